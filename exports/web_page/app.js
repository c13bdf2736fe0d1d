// Classify images in the browser with MediaPipe Tasks ImageClassifier; nothing is uploaded.
// The model's metadata (labels, normalisation) tells MediaPipe how to run it; the WASM files
// are served from this folder (./wasm), never from a CDN.
import { FilesetResolver, ImageClassifier } from "./vision_bundle.mjs";

const $ = (id) => document.getElementById(id);
const config = await (await fetch("app-config.json")).json();
document.title = config.title;
$("title").textContent = config.title;
$("model-name").textContent = config.source_file;
$("runtime").textContent = config.runtime;

// Below config.min_confidence (chosen on validation, written at export) the answer is "not
// sure": the rule of cifar.calibration.is_not_sure, top-1 probability below the threshold.
const minConfidence = config.min_confidence ?? null;
$("threshold").textContent =
  minConfidence === null
    ? "No min_confidence recorded for this model: every answer is a best guess."
    : `Answers "not sure" below a top-1 probability of ${minConfidence.toFixed(2)}.`;

// Every classification, for the page's readers and for tests: {name, categories, ms, notSure}.
window.classifications = [];

let classifier;
try {
  const fileset = await FilesetResolver.forVisionTasks("./wasm");
  classifier = await ImageClassifier.createFromOptions(fileset, {
    baseOptions: { modelAssetPath: config.model, delegate: "CPU" },
    runningMode: "IMAGE",
    maxResults: 3,
  });
  $("status").textContent = `Ready: ${config.classes.length} classes.`;
  document.body.dataset.state = "ready";
} catch (error) {
  $("status").textContent = `The model could not be loaded: ${error}`;
  document.body.dataset.state = "error";
  throw error;
}

function verdict(categories) {
  const best = categories[0];
  if (minConfidence !== null && best.score < minConfidence) {
    return `Not sure (best guess: ${best.categoryName} ${best.score.toFixed(2)}, below ${minConfidence.toFixed(2)})`;
  }
  return `${best.categoryName} ${best.score.toFixed(2)}`;
}

function show(categories, ms, name, notSure) {
  $("verdict").textContent = verdict(categories);
  $("verdict").dataset.notSure = String(notSure);
  const list = $("results");
  list.replaceChildren(
    ...categories.map((c) => {
      const item = document.createElement("li");
      item.dataset.label = c.categoryName;
      item.dataset.score = String(c.score);
      item.textContent = `${c.categoryName} ${(100 * c.score).toFixed(1)}%`;
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.round(120 * c.score)}px`;
      item.append(bar);
      return item;
    }),
  );
  $("timing").textContent = `${name}: classified in ${ms.toFixed(1)} ms in this browser`;
}

function classify(source, name) {
  const start = performance.now();
  const result = classifier.classify(source);
  const ms = performance.now() - start;
  const categories = result.classifications[0].categories.map((c) => ({
    index: c.index,
    categoryName: c.categoryName,
    score: c.score,
  }));
  const notSure = minConfidence !== null && categories[0].score < minConfidence;
  window.classifications.push({ name, categories, ms, notSure });
  show(categories, ms, name, notSure);
  document.body.dataset.state = "done";
  document.body.dataset.count = String(window.classifications.length);
}

async function classifyBlob(blob, name) {
  if (!blob.type.startsWith("image/")) {
    $("status").textContent = `${name} is not an image (${blob.type || "unknown type"}).`;
    return;
  }
  const url = URL.createObjectURL(blob);
  const image = $("preview");
  try {
    image.src = url;
    await image.decode();
    image.hidden = false;
    classify(image, name);
    $("status").textContent = "Ready.";
  } catch (error) {
    $("status").textContent = `${name} could not be read as an image: ${error}`;
  }
}

$("file").addEventListener("change", async (event) => {
  for (const file of event.target.files) await classifyBlob(file, file.name);
  event.target.value = ""; // picking the same file again fires "change" again
});

const drop = $("drop");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", async (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  for (const file of event.dataTransfer.files) await classifyBlob(file, file.name);
});

document.addEventListener("paste", async (event) => {
  for (const item of event.clipboardData.items) {
    const file = item.getAsFile();
    if (file) await classifyBlob(file, "pasted image");
  }
});

$("camera").addEventListener("click", async () => {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true });
    $("video").srcObject = stream;
    $("video").style.display = "block";
    $("snap").hidden = false;
  } catch (error) {
    $("status").textContent = `No camera: ${error}`;
  }
});
$("snap").addEventListener("click", () => classify($("video"), "camera frame"));
