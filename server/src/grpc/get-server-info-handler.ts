import type { GetServerInfoRequest, GetServerInfoResponse } from "@corral/proto/corral/v1";
import type { Metadata } from "@grpc/grpc-js";
import { authenticated, type Caller } from "./access.js";
import { LIMIT_FIELDS, type LimitName, type ServerInfo } from "../domain.js";

/** GetServerInfo: the server's version, load and host capabilities. */
export function createGetServerInfoHandler(info: () => ServerInfo, who: (metadata: Metadata) => Caller) {
  return authenticated<GetServerInfoRequest, GetServerInfoResponse>(who, () => {
    const i = info();
    const all = Object.keys(LIMIT_FIELDS) as LimitName[];
    return {
      version: i.version,
      nsjailVersion: i.nsjailVersion,
      concurrency: i.concurrency,
      queueDepth: i.queueDepth,
      running: i.running,
      profiles: [...i.profiles],
      host: {
        cgroupVersion: i.cgroupVersion,
        enforceableLimits: all.filter((l) => !i.unavailableLimits.includes(l)).map((l) => LIMIT_FIELDS[l]),
        unavailableLimits: i.unavailableLimits.map((l) => LIMIT_FIELDS[l]),
        problems: [...i.problems],
        apparmorActive: i.appArmor.active,
        apparmorProfilesLoaded: i.appArmor.profilesLoaded,
        seccomp: true,
        overlay: i.overlay,
        jobUid: i.jobUid,
      },
    };
  });
}
