// Runs an ONNX model in ONNX Runtime (CPU) on one float32 input and prints the first output as JSON.
// Usage: node ort_run.js MODEL.onnx INPUT.bin N,C,H,W
// Prints {"dims": [...], "data": [...], "inputNames": [...], "outputNames": [...]}.
const fs = require("fs");
const ort = require("onnxruntime-node");

async function main() {
  const [modelPath, inputPath, shapeText] = process.argv.slice(2);
  const dims = shapeText.split(",").map(Number);
  const bytes = fs.readFileSync(inputPath);
  const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const session = await ort.InferenceSession.create(modelPath, { executionProviders: ["cpu"] });
  const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", data, dims) };
  const results = await session.run(feeds);
  const out = results[session.outputNames[0]];
  process.stdout.write(JSON.stringify({
    dims: out.dims, data: Array.from(out.data), inputNames: session.inputNames, outputNames: session.outputNames,
  }));
}

main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
