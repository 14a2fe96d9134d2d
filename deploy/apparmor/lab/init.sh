#!/bin/sh
# The lab guest's init (PID 1), copied to /lab/init.sh by run.sh. Loads the repository's two
# profiles (rendered into /lab/profiles by run.sh), then, as the unprivileged user corral
# (uid 1000), runs /opt/lab/check under nsjail both ways Corral starts it, with and without
# seccomp, and looks with ps at the labels of a running job. Writes everything to the console
# and to /lab/results.txt, then powers the machine off.
#   RUN <name>: PASS|FAIL   one line per run; run.sh fails unless all eight (two profile loads, six runs) say PASS.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mountpoint -q /run || mount -t tmpfs tmpfs /run
mountpoint -q /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security
mount -o remount,rw /
echo 1 > /proc/sys/kernel/sysrq
echo 0 > /proc/sys/kernel/printk_ratelimit

NSJ=/opt/corral/.nsjail/nsjail/bin/nsjail
JOB_LABEL='corral-job//&corral-nsjail (enforce)'
NSJAIL_LABEL='corral-nsjail (enforce)'

as_corral() { setpriv --reuid=1000 --regid=1000 --init-groups --reset-env -- "$@"; }

# nsjail run by corral itself. $1 = config.
run_direct() {
  rm -rf /home/corral/ws /home/corral/other
  mkdir -p /home/corral/ws /home/corral/other
  echo input > /home/corral/ws/input.txt
  chown -R corral:corral /home/corral/ws /home/corral/other
  as_corral sh -c "cd /; $NSJ --log_fd 3 -C $1 3>/tmp/nsjail.log; echo \"nsjail rc=\$?\""
  grep -E '^\[(E|F)\]' /tmp/nsjail.log | head -5
}

# nsjail entered into a workspace holder, as Corral's workspace code does: the holder is an
# unshare'd user+mount namespace with a tmpfs workspace; nsjail joins it with nsenter. $1 = config.
run_holder() {
  rm -rf /home/corral/hws /home/corral/other
  mkdir -p /home/corral/hws/work /home/corral/other
  chown -R corral:corral /home/corral/hws /home/corral/other
  as_corral sh -c "
    cd /
    unshare --user --map-root-user --mount --propagation private sh -c 'mount -t tmpfs -o size=1m,mode=0755 corral-scratch /home/corral/hws/work && echo input > /home/corral/hws/work/input.txt && exec sleep 60' &
    hp=\$!; sleep 1
    nsenter --target=\$hp --user --mount --preserve-credentials -- $NSJ --log_fd 3 -C $1 3>/tmp/nsjail.log
    echo \"nsjail rc=\$?\"
    kill \$hp"
  grep -E '^\[(E|F)\]' /tmp/nsjail.log | head -5
}

# One run of the check program. $1 = direct|holder, $2 = seccomp|nosec.
run_check() {
  dmesg -C
  out=/tmp/run-$1-$2.txt
  echo "--- $1 / $2"
  # stdin, stdout and stderr are pipes, as Corral gives nsjail (a file opened out here would
  # show in the jail as a disconnected path).
  : | run_$1 /lab/cfg/$1-$2.cfg 2>&1 | cat > $out
  sed 's/^/  /' $out
  dmesg | grep -E 'apparmor="(DENIED|ALLOWED|AUDIT)"' | sed 's/.*audit: //;s/^/  DMESG: /' | head -20
  if grep -q '^DONE$' $out && grep -q '^SUMMARY pass=[0-9]* fail=0$' $out && grep -q '^nsjail rc=0$' $out &&
     ! grep -q -- '-> FAIL$' $out; then
    echo "RUN $1/$2: PASS"
  else
    echo "RUN $1/$2: FAIL"
  fi
}

# Which labels nsjail and its job run under, seen from outside while the job sleeps. $1 = direct|holder.
run_labels() {
  echo "--- $1 / labels (ps while the job sleeps)"
  : | run_$1 /lab/cfg/$1-sleep.cfg 2>&1 | cat > /tmp/sleep-$1.txt &
  i=0
  while [ $i -lt 40 ]; do # until the job runs (at most 20 s)
    ps -eo pid,user,label,args > /tmp/ps-$1.txt
    grep -q -E 'sleep 3$' /tmp/ps-$1.txt && break
    sleep 0.5; i=$((i + 1))
  done
  grep -E 'nsjail|sleep|unshare|nsenter' /tmp/ps-$1.txt | grep -v grep | sed 's/^/  ps: /'
  wait
  sed 's/^/  /' /tmp/sleep-$1.txt
  nl=$(grep -F " $NSJAIL_LABEL " /tmp/ps-$1.txt | grep -c -F "$NSJ")
  jl=$(grep -F " $JOB_LABEL " /tmp/ps-$1.txt | grep -c -E 'sleep 3$')
  if [ "$nl" -ge 1 ] && [ "$jl" -ge 1 ] && grep -q '^nsjail rc=0$' /tmp/sleep-$1.txt; then
    echo "RUN $1/labels: PASS"
  else
    echo "RUN $1/labels: FAIL (nsjail as '$NSJAIL_LABEL': $nl, job as '$JOB_LABEL': $jl)"
  fi
}

main() {
  echo "=== LAB START $(date -u)"
  echo "kernel: $(uname -r)"
  echo "parser: $(apparmor_parser --version | head -1)"
  echo "apparmor enabled: $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)"
  echo "nsjail: $(cat /opt/corral/.nsjail/VERSION 2>/dev/null)"
  for p in corral-job corral-nsjail; do
    echo "--- profile $p (as rendered):"
    grep -v '^ *#' /lab/profiles/$p | sed '/^ *$/d;s/^/  | /'
    if apparmor_parser -r /lab/profiles/$p; then echo "RUN load $p: PASS"; else echo "RUN load $p: FAIL"; fi
  done
  grep corral /sys/kernel/security/apparmor/profiles | sed 's/^/  loaded: /'
  for scen in direct holder; do
    for sec in seccomp nosec; do run_check $scen $sec; done
    run_labels $scen
  done
  echo "=== LAB END"
}

main 2>&1 | tee /lab/results.txt
sync
echo o > /proc/sysrq-trigger
sleep 30
