// The search page: query box -> /api/search -> ranked clip cards with per-level score bars,
// the concepts that carried each hit, and warnings when the model does not know the words.
"use strict";

const LEVEL_COLORS = {
  global: "var(--global)", entity: "var(--entity)",
  action: "var(--action)", relation: "var(--relation)",
};

const form = document.getElementById("search-form");
const queryInput = document.getElementById("query");
const kInput = document.getElementById("k");
const modeInput = document.getElementById("mode");
const domainLine = document.getElementById("domain");
const examplesLine = document.getElementById("examples");
const warningLine = document.getElementById("warning");
const matchedLine = document.getElementById("matched");
const statusLine = document.getElementById("status");
const reasonLine = document.getElementById("reason");
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

function showWarnings(warnings) {
  warningLine.textContent = (warnings || []).join(" ");
  warningLine.hidden = !warnings || warnings.length === 0;
}

function showMatched(matches, notes = []) {
  const byWord = new Map();
  for (const match of matches || []) {
    if (!byWord.has(match.word)) byWord.set(match.word, []);
    byWord.get(match.word).push(match.name);
  }
  const parts = [...byWord].map(([word, names]) => {
    const shown = names.slice(0, 4).join(", ") + (names.length > 4 ? `, +${names.length - 4}` : "");
    return `${word} → ${shown}`;
  });
  const text = parts.length ? `concepts: ${parts.join("; ")}` : "";
  matchedLine.textContent = [text, ...(notes || []).map((n) => `(${n})`)].filter(Boolean).join(" ");
}

function conceptList(hit) {
  if (!hit.concepts || hit.concepts.length === 0) return document.createTextNode("");
  return el("ul", { class: "concepts", "aria-label": "matched concepts" }, hit.concepts.map(
    (c) => el("li", { "data-concept": c.concept, title: `query word(s): ${c.words.join(", ")}` }, [
      el("span", { class: "c", text: c.concept }),
      el("span", { class: "p", text: `p=${c.probability.toFixed(3)}` }),
    ])));
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

function scoreParts(hit) {
  // The parts beside the ordering score: the model's fused score, the matcher's, the concepts'.
  const parts = [];
  const add = (cls, label, value, title) => {
    if (value === null || value === undefined) return;
    parts.push(el("span", { class: cls, text: `${label} ${value.toFixed(3)}`, title }));
  };
  add("fused", "fused", hit.fused_score, "the model's fused score (the sum of the level bars)");
  add("match", "match", hit.match_score, "binding matcher score (colours, actions and roles "
    + "read from the frames); the re-ranked hits are ordered by fused + weight × match");
  add("concept", "concept", hit.concept_score, "concept score: the matched concepts' "
    + "probabilities in the clip, weighted");
  return el("div", { class: "parts" }, parts);
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
        el("span", {
          class: "id", text: hit.video_id,
          title: hit.path && hit.path !== hit.video_id ? `${hit.video_id}\n${hit.path}` : hit.video_id,
        }),
        el("span", {
          class: "score", text: hit.score.toFixed(3),
          title: `the score the results are ordered by: ${data.ranked_by || "score"}`,
        }),
      ]),
      scoreParts(hit),
      levelBars(hit, data.levels, scale),
      conceptList(hit),
    ]),
  ])));
}

const RERANK = new URLSearchParams(location.search).get("rerank");  // ?rerank=0: fused only

async function runSearch(query, k, mode) {
  setStatus("searching…");
  const params = new URLSearchParams({ q: query, k: String(k), mode: mode || "auto" });
  if (RERANK !== null) params.set("rerank", RERANK);
  const started = performance.now();
  try {
    const response = await fetch(`/api/search?${params}`);
    const data = await response.json();
    if (!response.ok) {
      results.replaceChildren();
      reasonLine.textContent = "";
      showWarnings([]);
      showMatched([]);
      setStatus(data.error || `error ${response.status}`, true);
      return;
    }
    render(data);
    showWarnings(data.warnings);
    showMatched(data.matched_concepts, data.notes);
    const ms = Math.round(performance.now() - started);
    statusLine.dataset.mode = data.mode;
    reasonLine.textContent = data.mode_reason
      ? `${data.mode_reason}; ordered by ${data.ranked_by}` : `ordered by ${data.ranked_by}`;
    const reranked = data.reranked && data.rerank
      ? `, top ${data.rerank.shortlist} re-ranked by the binding matcher` : "";
    setStatus(`${data.hits.length} results for “${data.query}” (mode: ${data.mode}${reranked}) `
      + `in ${ms} ms`);
    history.replaceState(null, "", `?${params}`);
  } catch (err) {
    setStatus(`search failed: ${err}`, true);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  runSearch(queryInput.value, kInput.value || 12, modeInput.value);
});

function showExamples(examples) {
  // Queries from the index's own vocabulary: one click searches.
  examplesLine.replaceChildren(document.createTextNode("try: "), ...examples.map((text) => {
    const button = el("button", { type: "button", class: "example", text });
    button.addEventListener("click", () => {
      queryInput.value = text;
      runSearch(text, kInput.value || 12, modeInput.value);
    });
    return button;
  }));
  examplesLine.hidden = examples.length === 0;
}

async function loadHealth() {
  try {
    const health = await (await fetch("/api/health")).json();
    domainLine.textContent = health.domain || "";
    showExamples(health.examples || []);
    for (const option of [...modeInput.options]) {
      option.disabled = !(health.modes || []).includes(option.value);
    }
  } catch (err) {
    domainLine.textContent = "";
  }
}
loadHealth();

const initial = new URLSearchParams(location.search);
if (initial.get("q")) {
  queryInput.value = initial.get("q");
  if (initial.get("k")) kInput.value = initial.get("k");
  if (initial.get("mode")) modeInput.value = initial.get("mode");
  runSearch(queryInput.value, kInput.value, modeInput.value);
}
