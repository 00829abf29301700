// uir serve's page: send each photo to /v1/inspect and /v1/restore, show before | after and what the model saw.
"use strict";

const drop = document.getElementById("drop");
const input = document.getElementById("files");
const results = document.getElementById("results");
const template = document.getElementById("card");
let queue = Promise.resolve();

fetch("/v1/models").then((r) => r.json()).then((info) => {
  document.getElementById("model").textContent = info.models[0].name;
}).catch(() => {});

input.addEventListener("change", () => { addFiles(input.files); input.value = ""; });
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); addFiles(e.dataTransfer.files); });

function addFiles(files) {
  for (const file of files) {
    const card = template.content.firstElementChild.cloneNode(true);
    card.querySelector(".name").textContent = file.name;
    results.prepend(card);
    queue = queue.then(() => process(file, card));  // one photo at a time: the server has one model
  }
}

async function post(path, file) {
  const form = new FormData();
  form.append("file", file, file.name);
  const response = await fetch(path, { method: "POST", body: form });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (err) { /* not JSON */ }
    throw new Error(detail);
  }
  return response;
}

async function process(file, card) {
  const status = card.querySelector(".status");
  const message = card.querySelector(".message");
  const started = performance.now();
  const tick = setInterval(() => {
    message.textContent = `Restoring… ${((performance.now() - started) / 1000).toFixed(0)} s`;
  }, 250);
  try {
    const inspection = await (await post("/v1/inspect", file)).json();
    const response = await post("/v1/restore", file);
    const blob = await response.blob();
    const seconds = response.headers.get("X-Uir-Seconds");
    const model = response.headers.get("X-Uir-Model");
    showCompare(card, file, blob);
    showSeen(card, inspection, model, seconds);
    const link = card.querySelector(".download");
    link.href = URL.createObjectURL(blob);
    link.download = downloadName(response, file.name);
    card.querySelector(".actions").hidden = false;
    status.classList.add("done");
    message.textContent = `Done in ${((performance.now() - started) / 1000).toFixed(1)} s`;
  } catch (err) {
    status.classList.add("error");
    message.textContent = err.message;
  } finally {
    clearInterval(tick);
  }
}

function showCompare(card, file, blob) {
  const compare = card.querySelector(".compare");
  const clip = card.querySelector(".after-clip");
  card.querySelector(".before").src = URL.createObjectURL(file);
  card.querySelector(".after").src = URL.createObjectURL(blob);
  card.querySelector(".slider").addEventListener("input", (e) => {
    clip.style.clipPath = `inset(0 0 0 ${e.target.value}%)`;
    compare.style.setProperty("--split", `${e.target.value}%`);
  });
  compare.hidden = false;
}

function showSeen(card, report, model, seconds) {
  const rows = [
    ["verdict", report.verdict],
    ["size", `${report.width} × ${report.height}`],
    ["PIQE", `${report.piqe.toFixed(1)} (${report.piqe_grade}; lower is better)`],
    ["NIQE", report.niqe === null ? "– (smaller than 96 px)" : report.niqe.toFixed(2)],
  ];
  if (report.degradations) rows.push(["degradations", percents(report.degradations, 5)]);
  if (report.tree_path) rows.push(["tree path", report.tree_path.join(" → ")]);
  if (report.quality_tiers) rows.push(["quality tier", percents(report.quality_tiers, 3)]);
  rows.push(["model", `${model}, ${Number(seconds).toFixed(2)} s`]);
  const list = card.querySelector(".seen");
  for (const [term, value] of rows) {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = term;
    dd.textContent = value;
    list.append(dt, dd);
  }
  list.hidden = false;
}

function percents(probabilities, count) {
  return Object.entries(probabilities).slice(0, count).map(([k, v]) => `${k} ${(v * 100).toFixed(0)}%`).join(", ");
}

function downloadName(response, fallback) {
  const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  return match ? match[1] : fallback;
}
