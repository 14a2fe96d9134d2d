import type { ListProfilesRequest, ListProfilesResponse } from "@corral/proto/corral/v1";
import type { Metadata } from "@grpc/grpc-js";
import type { Profile } from "../sandbox/profiles.js";
import { authenticated, type Caller } from "./access.js";

/** ListProfiles: the profiles this caller may use (a token limited to some sees only those). */
export function createListProfilesHandler(profiles: ReadonlyMap<string, Profile>, who: (metadata: Metadata) => Caller) {
  return authenticated<ListProfilesRequest, ListProfilesResponse>(who, (caller) => {
    const visible = [...profiles.values()].filter((p) => !caller.profiles || caller.profiles.has(p.name));
    return {
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
    };
  });
}
