// Runs an ONNX model in ONNX Runtime (the npm package onnxruntime-node, CPU) on raw float32
// inputs and writes each output's raw data, for the export tests and benchmarks:
//   node run_model.js MODEL.onnx INPUT.f32 OUT_DIR [THREADS] [REPEATS]
// INPUT.f32 holds the model's one input in its declared shape, little-endian float32. Writes
// OUT_DIR/<output name>.bin (little-endian, its element type: float32 or int64) and
// OUT_DIR/outputs.json ({"outputs": {name: {"dims", "type"}}}); with REPEATS > 0 also
// the mean milliseconds of that many runs after one warm-up ("ms" in outputs.json).
// Finds the package through NODE_PATH (scripts/install-deps.sh installs it in
// /usr/local/lib/centermask-onnxruntime/node_modules).
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

async function main() {
  const [modelPath, inputPath, outDir, threadsArg, repeatsArg] = process.argv.slice(2);
  if (!modelPath || !inputPath || !outDir) {
    console.error('usage: node run_model.js MODEL.onnx INPUT.f32 OUT_DIR [THREADS] [REPEATS]');
    process.exit(2);
  }
  const threads = Number(threadsArg || 0);
  const repeats = Number(repeatsArg || 0);
  const options = {graphOptimizationLevel: 'all'};
  if (threads > 0) {
    options.intraOpNumThreads = threads;
    options.interOpNumThreads = 1;
  }
  const session = await ort.InferenceSession.create(modelPath, options);
  const inputName = session.inputNames[0];
  const bytes = fs.readFileSync(inputPath);
  const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const shapeText = process.env.INPUT_SHAPE;
  if (!shapeText) throw new Error('set INPUT_SHAPE, e.g. 1,3,64,64');
  const shape = shapeText.split(',').map(Number);
  const feeds = {[inputName]: new ort.Tensor('float32', data, shape)};
  let results = await session.run(feeds);
  const report = {outputs: {}};
  if (repeats > 0) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < repeats; ++i) results = await session.run(feeds);
    report.ms = Number(process.hrtime.bigint() - start) / 1e6 / repeats;
  }
  fs.mkdirSync(outDir, {recursive: true});
  for (const name of session.outputNames) {
    const tensor = results[name];
    report.outputs[name] = {dims: tensor.dims, type: tensor.type};
    fs.writeFileSync(path.join(outDir, name + '.bin'), Buffer.from(tensor.data.buffer,
        tensor.data.byteOffset, tensor.data.byteLength));
  }
  fs.writeFileSync(path.join(outDir, 'outputs.json'), JSON.stringify(report));
}

main().catch((error) => {
  console.error('error: ' + (error && error.message ? error.message : error));
  process.exit(1);
});
