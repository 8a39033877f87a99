/** Replaced at build time with the version in package.json. */
declare const __OSHARA_VERSION__: string;
