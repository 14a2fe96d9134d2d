import type { ListProfilesRequest, ListProfilesResponse } from "@corral/proto/corral/v1";
import type { Metadata, sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import type { Profile } from "../sandbox/profiles.js";
import type { Caller } from "./access.js";
import { toGrpcStatus } from "./to-grpc-status.js";

/** ListProfiles: the profiles this caller may use (a token limited to some sees only those). */
export function createListProfilesHandler(profiles: ReadonlyMap<string, Profile>, who: (metadata: Metadata) => Caller) {
  return (
    call: ServerUnaryCall<ListProfilesRequest, ListProfilesResponse>,
    callback: sendUnaryData<ListProfilesResponse>,
  ): void => {
    let caller: Caller;
    try {
      caller = who(call.metadata);
    } catch (err) {
      return callback(toGrpcStatus(err));
    }
    const visible = [...profiles.values()].filter((p) => !caller.profiles || caller.profiles.has(p.name));
    callback(null, {
      profiles: visible.map((p) => ({
        name: p.name,
        description: p.description,
        defaultLimits: {
          wallTimeMs: BigInt(p.limits.wallTimeMs),
          cpuTimeMs: BigInt(p.limits.cpuTimeMs),
          memoryBytes: BigInt(p.limits.memoryBytes),
          processes: p.limits.processes,
          outputBytes: BigInt(p.limits.outputBytes),
          fileSizeBytes: BigInt(p.limits.fileSizeBytes),
          openFiles: p.limits.openFiles,
          stackBytes: BigInt(p.limits.stackBytes),
        },
        mounts: p.mounts.map((m) => ({ path: m.dst, writable: m.type === "bind" && m.rw, why: m.why })),
        sourceFile: p.file ?? "",
        build: p.build ?? [],
        run: p.run ?? [],
      })),
    });
  };
}
