/** Replaced at build time with the version in package.json. */
declare const __OSHARA_VERSION__: string;
/** Replaced at build time with the call chunk's path beside widget.js: "widget/call.<hash>.js". */
declare const __OSHARA_CALL_CHUNK__: string;
