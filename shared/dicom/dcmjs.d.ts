/**
 * The part of dcmjs (https://github.com/dcmjs-org/dcmjs, no bundled types) that shared/dicom uses:
 * reading a Part 10 file into a tag dictionary, (de)naturalizing datasets, writing one back,
 * 1-bit packing and sRGB -> DICOM CIELab.
 */
declare module 'dcmjs' {
  type TagDict = Record<string, { vr: string; Value?: unknown[] }>;
  interface DicomDictInstance {
    meta: TagDict;
    dict: TagDict;
    write(options?: { allowInvalidVRLength?: boolean; fragmentMultiframe?: boolean }): ArrayBuffer;
  }
  interface ReadOptions {
    ignoreErrors?: boolean;
    untilTag?: string | null;
    includeUntilTagValue?: boolean;
    noCopy?: boolean;
    forceStoreRaw?: boolean;
  }
  const dcmjs: {
    data: {
      DicomMessage: { readFile(buffer: ArrayBuffer, options?: ReadOptions): DicomDictInstance };
      DicomDict: new (meta: TagDict) => DicomDictInstance;
      DicomMetaDictionary: {
        naturalizeDataset(dict: TagDict): Record<string, unknown>;
        denaturalizeDataset(dataset: Record<string, unknown>): TagDict;
      };
      Colors: { rgb82DICOMLAB(rgb: ArrayLike<number>): number[] };
      BitArray: { pack(pixels: ArrayLike<number>): Uint8Array };
    };
    log: {
      setLevel(level: 'silent' | 'error' | 'warn'): void;
      getLogger(name: string): { setLevel(level: string): void };
    };
  };
  export default dcmjs;
}
