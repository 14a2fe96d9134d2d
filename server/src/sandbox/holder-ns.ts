/**
 * The user namespace a workspace holder makes (`unshare --user` plus these): the service's uid
 * as 0, and, with subordinate ids, the service user's /etc/subuid range from 1.
 */
export const OWN_IDS = ["--map-root-user"];
export const SUBORDINATE_IDS = ["--map-root-user", "--map-auto"];

/**
 * The command prefix that runs a program in a holder's user and mount namespaces, as 0 there
 * (util-linux nsenter; the credentials are kept: the service's uid is that 0).
 */
export function enterHolder(holderPid: number): string[] {
  return ["/usr/bin/nsenter", `--target=${holderPid}`, "--user", "--mount", "--preserve-credentials", "--"];
}
