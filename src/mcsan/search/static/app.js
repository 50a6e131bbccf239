// The search page: query box -> /api/search -> ranked clip cards with per-level score bars.
"use strict";

const LEVEL_COLORS = {
  global: "var(--global)", entity: "var(--entity)",
  action: "var(--action)", relation: "var(--relation)",
};

const form = document.getElementById("search-form");
const queryInput = document.getElementById("query");
const kInput = document.getElementById("k");
const statusLine = document.getElementById("status");
const legend = document.getElementById("legend");
const results = document.getElementById("results");

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key === "style") node.style.cssText = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.appendChild(child);
  return node;
}

function setStatus(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
}

function showLegend(levels, weights) {
  legend.replaceChildren(...levels.map((level) => el("span", {}, [
    el("span", { class: "swatch", style: `background:${LEVEL_COLORS[level] || "#888"}` }),
    document.createTextNode(`${level} (weight ${Number(weights[level]).toFixed(2)})`),
  ])));
}

function levelBars(hit, levels, scale) {
  const rows = [];
  for (const level of levels) {
    const value = hit.level_scores[level];
    const width = scale > 0 ? Math.min(100, (Math.abs(value) / scale) * 100) : 0;
    const fill = el("div", {
      class: "fill" + (value < 0 ? " negative" : ""),
      style: `width:${width.toFixed(1)}%;background:${LEVEL_COLORS[level] || "#888"}`,
    });
    rows.push(el("span", { class: "name", text: level }));
    rows.push(el("div", {
      class: "track", "data-level": level, title: `${level} contributes ${value.toFixed(4)}`,
    }, [fill]));
    rows.push(el("span", { class: "val", text: value.toFixed(3) }));
  }
  return el("div", { class: "bars", "aria-label": "score by level" }, rows);
}

function mediaBox(hit) {
  const box = el("div", { class: "media" });
  if (hit.media_url && hit.media_kind === "image") {
    box.appendChild(el("img", { src: hit.media_url, alt: hit.video_id, loading: "lazy" }));
  } else if (hit.media_url) {
    const video = el("video", {
      src: hit.media_url, muted: "", loop: "", autoplay: "", playsinline: "",
      preload: "metadata", title: hit.path,
    });
    video.muted = true;
    box.appendChild(video);
  } else {
    box.appendChild(el("div", { class: "none", text: "no clip (features only)" }));
  }
  box.appendChild(el("span", { class: "rank", text: `#${hit.rank}` }));
  return box;
}

function render(data) {
  showLegend(data.levels, data.weights);
  const scale = Math.max(1e-9, ...data.hits.flatMap(
    (hit) => data.levels.map((level) => Math.abs(hit.level_scores[level]))));
  results.replaceChildren(...data.hits.map((hit) => el("li", {
    class: "hit", "data-rank": String(hit.rank), "data-video-id": hit.video_id,
    "data-score": String(hit.score),
  }, [
    mediaBox(hit),
    el("div", { class: "info" }, [
      el("div", { class: "title" }, [
        el("span", { class: "id", text: hit.video_id, title: hit.path || hit.video_id }),
        el("span", { class: "score", text: hit.score.toFixed(3), title: "fused score" }),
      ]),
      levelBars(hit, data.levels, scale),
    ]),
  ])));
}

async function runSearch(query, k) {
  setStatus("searching…");
  const params = new URLSearchParams({ q: query, k: String(k) });
  const started = performance.now();
  try {
    const response = await fetch(`/api/search?${params}`);
    const data = await response.json();
    if (!response.ok) {
      results.replaceChildren();
      setStatus(data.error || `error ${response.status}`, true);
      return;
    }
    render(data);
    const ms = Math.round(performance.now() - started);
    setStatus(`${data.hits.length} results for “${data.query}” in ${ms} ms`);
    history.replaceState(null, "", `?${params}`);
  } catch (err) {
    setStatus(`search failed: ${err}`, true);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  runSearch(queryInput.value, kInput.value || 12);
});

const initial = new URLSearchParams(location.search);
if (initial.get("q")) {
  queryInput.value = initial.get("q");
  if (initial.get("k")) kInput.value = initial.get("k");
  runSearch(queryInput.value, kInput.value);
}
