// Typed lint for every TypeScript source. Generated code and build output are not linted.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "proto/gen/**", "node_modules/**", "**/*.mjs", "**/bin/*.js", "vitest.config.ts"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-non-null-assertion": "off",
      // Imports point down only: grpc -> jobs -> sandbox.
      "no-restricted-imports": "off",
    },
  },
  {
    files: ["server/src/sandbox/**/*.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["**/grpc/**", "**/jobs/job-*"],
              message: "sandbox/ must not import from grpc/ or the job service",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["server/src/jobs/**/*.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["**/grpc/**", "@corral/proto/**", "@grpc/**"],
              message: "jobs/ speaks domain types: no protobuf or gRPC here",
            },
          ],
        },
      ],
    },
  },
);
