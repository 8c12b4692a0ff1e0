// Copy the pinned player libraries from node_modules into static/build/, where Django's
// staticfiles finds them. Nothing is loaded from a public CDN at run time.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "static", "build");
mkdirSync(out, { recursive: true });

const files = {
  "hls.min.js": "node_modules/hls.js/dist/hls.min.js",
  "hls.min.js.map": "node_modules/hls.js/dist/hls.min.js.map",
  "shaka-player.compiled.js": "node_modules/shaka-player/dist/shaka-player.compiled.js",
  // The bundles name their source maps; collectstatic's manifest insists they exist.
  "shaka-player.compiled.map": "node_modules/shaka-player/dist/shaka-player.compiled.map",
  "chart.umd.min.js": "node_modules/chart.js/dist/chart.umd.min.js",
  "chart.umd.min.js.map": "node_modules/chart.js/dist/chart.umd.min.js.map",
  // Resumable uploads in the lesson admin (tus 1.0.0 client).
  "tus.min.js": "node_modules/tus-js-client/dist/tus.min.js",
  "tus.min.js.map": "node_modules/tus-js-client/dist/tus.min.js.map",
  // Direct uploads to S3 (docs/adr/0026): each part's MD5 (WebAssembly; Web Crypto has no MD5).
  "md5.umd.min.js": "node_modules/hash-wasm/dist/md5.umd.min.js",
};
for (const [name, source] of Object.entries(files)) {
  copyFileSync(join(root, source), join(out, name));
  console.log(`static/build/${name} <- ${source}`);
}
