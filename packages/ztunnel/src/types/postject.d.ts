// postject ships no types; the one call we make (executable.ts).
declare module 'postject' {
  export function inject(filename: string, resourceName: string, resourceData: Buffer, options?: { sentinelFuse?: string; overwrite?: boolean }): Promise<void>;
}
