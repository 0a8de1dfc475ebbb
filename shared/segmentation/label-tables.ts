/**
 * Label descriptions written next to a NIfTI mask so that viewers show names and colours:
 * ITK-SNAP's label description file (also read by ITK-SNAP's "Import Label Descriptions" and by
 * MITK) and a 3D Slicer colour table (.ctbl, loaded as a colour node and used for the labelmap).
 */
import type { Structure } from './structures.ts';

/** ITK-SNAP label description: `IDX R G B A VIS MSH "LABEL"`, background included. */
export function itkSnapLabels(structures: Structure[]): string {
  const lines = [
    '################################################',
    '# ITK-SnAP Label Description File',
    '# Columns: IDX -R- -G- -B- -A-- VIS MSH LABEL',
    '# Written by freetumor segment',
    '################################################',
    '    0     0    0    0        0  0  0    "Clear Label"',
  ];
  for (const s of structures) {
    const [r, g, b] = s.rgb;
    lines.push(
      `${String(s.classId).padStart(5)} ${String(r).padStart(5)} ${String(g).padStart(4)} ${String(b).padStart(4)}        1  1  1    "${s.name}"`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** 3D Slicer colour table: `index name R G B A`, names without spaces. */
export function slicerColorTable(structures: Structure[]): string {
  const lines = ['# Color table file written by freetumor segment', `# ${structures.length + 1} values`];
  lines.push('0 background 0 0 0 0');
  for (const s of structures)
    lines.push(`${s.classId} ${s.name.replace(/\s+/g, '_')} ${s.rgb.join(' ')} 255`);
  return `${lines.join('\n')}\n`;
}

/** Names of the two tables beside a mask `NAME.nii.gz` (or `.nii`): NAME.label.txt and NAME.ctbl. */
export function labelTablePaths(maskPath: string): { itkSnap: string; slicer: string } {
  const stem = maskPath.replace(/\.nii(\.gz)?$/i, '');
  return { itkSnap: `${stem}.label.txt`, slicer: `${stem}.ctbl` };
}
