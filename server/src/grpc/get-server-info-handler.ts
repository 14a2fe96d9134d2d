import type { GetServerInfoRequest, GetServerInfoResponse } from "@corral/proto/corral/v1";
import type { Metadata, sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import type { Caller } from "./access.js";
import { toGrpcStatus } from "./to-grpc-status.js";
import { LIMIT_FIELDS, type LimitName, type ServerInfo } from "../domain.js";

/** GetServerInfo: the server's version, load and host capabilities. */
export function createGetServerInfoHandler(info: () => ServerInfo, who: (metadata: Metadata) => Caller) {
  return (
    call: ServerUnaryCall<GetServerInfoRequest, GetServerInfoResponse>,
    callback: sendUnaryData<GetServerInfoResponse>,
  ): void => {
    try {
      who(call.metadata);
    } catch (err) {
      return callback(toGrpcStatus(err));
    }
    const i = info();
    const all = Object.keys(LIMIT_FIELDS) as LimitName[];
    callback(null, {
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
      },
    });
  };
}
