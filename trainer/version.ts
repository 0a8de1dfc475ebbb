/** The package version (package.json), for `freetumor --version` and the software versions outputs carry. */
import pkg from '../package.json' with { type: 'json' };

export const PACKAGE_NAME: string = pkg.name;
export const VERSION: string = pkg.version;
