import Foundation
import Net

/// The one page `deconvnet explore` serves: plain HTML, CSS and script in one document that asks the
/// API (`ExploreAPI`) for everything it shows; nothing from the network. Pictures are the API's PNGs
/// (drawn with `image-rendering: pixelated`) and feature maps drawn on canvases from the API's numbers;
/// every label, caption and number is text in the HTML.
enum ExplorePage {
    /// A 16x16 favicon: a 3x3 grid of gray squares (the top-9), so the browser's request for one succeeds.
    static let favicon: Data = {
        var pixels = [UInt8](repeating: 255, count: 16 * 16)
        for y in 0..<16 {
            for x in 0..<16 where y % 5 != 0 && x % 5 != 0 { pixels[y * 16 + x] = UInt8(60 + 20 * ((y / 5) * 3 + x / 5)) }
        }
        return try! Image(width: 16, height: 16, channels: 1, pixels: pixels).pngData()
    }()

    static let html = #"""
    <!DOCTYPE html>
    <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
    <title>deconvnet explore</title>
    <link rel="icon" href="/favicon.png" type="image/png">
    <style>
    body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #222; background: #fff; }
    header { padding: 10px 20px; border-bottom: 1px solid #ddd; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
    h1 { font-size: 19px; margin: 0; } h2 { font-size: 15px; margin: 14px 0 6px; border-bottom: 1px solid #e4e4e4; padding-bottom: 3px; }
    .meta, .note { color: #555; font-size: 12px; }
    main { display: grid; grid-template-columns: 360px 1fr; gap: 0 22px; padding: 0 20px 20px; }
    #browser { border-right: 1px solid #eee; padding-right: 16px; }
    .controls { display: flex; flex-wrap: wrap; gap: 6px 10px; align-items: center; margin: 6px 0; font-size: 12px; }
    select, input, button { font: inherit; font-size: 12px; }
    #grid { display: grid; grid-template-columns: repeat(5, 1fr); gap: 4px; }
    .thumb { border: 2px solid transparent; padding: 2px; cursor: pointer; text-align: center; font-size: 10px; background: #fafafa; }
    .thumb img { width: 56px; height: 56px; display: block; margin: 0 auto; }
    .thumb.wrong { background: #fde8e8; } .thumb.selected { border-color: #1f6fd1; }
    img.px, canvas.px { image-rendering: pixelated; image-rendering: crisp-edges; }
    #bigmap, #o-score, #o-class, #o-feature { width: 168px; height: auto; } #patch { width: 112px; height: auto; }
    #o-score, #o-class, #o-feature { outline: 1px solid #ccc; }
    #drop { border: 2px dashed #aaa; padding: 8px; text-align: center; color: #555; font-size: 12px; margin: 8px 0; }
    #drop.over { border-color: #1f6fd1; background: #eef4fc; }
    .row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
    .box { position: relative; display: inline-block; line-height: 0; }
    .field { position: absolute; border: 2px solid #e0302a; pointer-events: none; }
    table { border-collapse: collapse; font-size: 12px; } th, td { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: left; }
    td.num { text-align: right; font-variant-numeric: tabular-nums; }
    .bar { display: inline-block; height: 9px; background: #1f6fd1; vertical-align: middle; }
    .layer { margin: 4px 0 8px; } .maps { display: flex; flex-wrap: wrap; gap: 3px; }
    .map { cursor: pointer; border: 2px solid transparent; line-height: 0; } .map.selected { border-color: #1f6fd1; }
    .layer.selected > .lname { font-weight: 700; color: #1f6fd1; } .lname { font-size: 12px; margin-bottom: 2px; cursor: pointer; }
    figure { margin: 0; text-align: center; } figcaption { font-size: 11px; color: #444; line-height: 1.3; margin-top: 3px; }
    #top9 { display: grid; grid-template-columns: repeat(3, max-content); gap: 6px 10px; }
    #top9 .tile { text-align: center; font-size: 10px; }
    progress { width: 200px; vertical-align: middle; }
    .status { font-size: 12px; color: #555; } .error { color: #b00020; }
    kbd { border: 1px solid #bbb; border-radius: 3px; padding: 0 3px; font-size: 11px; background: #f6f6f6; }
    </style></head>
    <body>
    <header>
      <h1>deconvnet explore</h1>
      <span class="meta" id="summary">loading…</span>
      <span id="epochs" hidden><label for="epoch">snapshot</label> <input type="range" id="epoch" min="0" max="0" step="1" value="0"> <span id="epoch-label"></span></span>
    </header>
    <main>
    <section id="browser">
      <h2>Test images</h2>
      <div class="controls">
        <label>class <select id="f-class"><option value="">all</option></select></label>
        <label>show <select id="f-show"><option value="all">all</option><option value="correct">correct</option><option value="wrong">wrong</option></select></label>
        <label>sort <select id="f-sort"><option value="index">index</option><option value="confidence">confidence</option><option value="loss">loss</option></select></label>
        <select id="f-order" aria-label="order"><option value="">default order</option><option value="asc">ascending</option><option value="desc">descending</option></select>
      </div>
      <div class="controls"><button id="prev">‹ prev</button><span id="range" class="status"></span><button id="next">next ›</button></div>
      <div id="grid"></div>
      <h2>Your own image</h2>
      <div id="drop">Drop a PNG or JPEG here, or <input type="file" id="file" accept="image/png,image/jpeg"></div>
      <div id="upload-status" class="status"></div>
    </section>
    <section id="detail">
      <div id="empty" class="status">Choose an image on the left.</div>
      <div id="one" hidden>
        <h2 id="image-title">Image</h2>
        <div class="row">
          <figure><div class="box" id="input-box"><img class="px" id="input" width="168" height="168" alt="input image"><div class="field" id="input-field" hidden></div></div>
            <figcaption id="input-caption"></figcaption></figure>
          <div><div id="verdict"></div><table id="top5"><thead><tr><th>class</th><th>probability</th><th></th></tr></thead><tbody></tbody></table>
            <p class="note" id="conversion"></p></div>
        </div>
        <h2>Feature maps</h2>
        <p class="note">Click a map: its strongest unit. Click a position in the large map: that unit. Keys: <kbd>←</kbd><kbd>→</kbd><kbd>↑</kbd><kbd>↓</kbd> move the unit,
          <kbd>[</kbd> <kbd>]</kbd> (or <kbd>Shift</kbd>+<kbd>←</kbd>/<kbd>→</kbd>) the channel, <kbd>1</kbd>–<kbd>9</kbd> and <kbd>,</kbd> <kbd>.</kbd> the layer.
          Maps are scaled per layer, 0 black to the layer's largest activation white.</p>
        <div id="layers"></div>
        <h2 id="unit-title">Unit</h2>
        <div class="row" id="unit">
          <figure><canvas class="px" id="bigmap" width="168" height="168"></canvas><figcaption id="bigmap-caption">selected map: click a position</figcaption></figure>
          <figure><img class="px" id="proj-deconvnet" width="168" height="168" alt="deconvnet projection"><figcaption>deconvnet</figcaption></figure>
          <figure><img class="px" id="proj-guided" width="168" height="168" alt="guided backpropagation"><figcaption>guided</figcaption></figure>
          <figure><img class="px" id="proj-gradient" width="168" height="168" alt="gradient (saliency)"><figcaption>gradient</figcaption></figure>
          <figure><canvas class="px" id="patch" width="112" height="112"></canvas><figcaption id="patch-caption">receptive field</figcaption></figure>
        </div>
        <p class="note">Projections of a unit seed, each scaled symmetrically: 0 mid-gray, +max|v| white, −max|v| black. The red box is the unit's receptive field; outside the image it is 0 (the zero padding the network sees).</p>
        <h2 id="top9-title">Top 9 of the channel</h2>
        <div id="top9-status" class="status"></div>
        <div id="top9"></div>
        <h2>Occlusion</h2>
        <div class="controls">
          <label>window <input type="number" id="o-window" min="1" value="8" style="width:4em"></label>
          <label>stride <input type="number" id="o-stride" min="1" value="1" style="width:4em"></label>
          <label>class <select id="o-target"><option value="">true / predicted</option></select></label>
          <span id="occlusion-status" class="status"></span>
        </div>
        <div class="row" id="occlusion">
          <figure><canvas class="px" id="o-score" width="168" height="168"></canvas><figcaption id="o-score-caption">class probability by occluder position</figcaption></figure>
          <figure><canvas class="px" id="o-class" width="168" height="168"></canvas><figcaption>most probable class by occluder position</figcaption></figure>
          <figure><canvas class="px" id="o-feature" width="168" height="168"></canvas><figcaption id="o-feature-caption">feature map activity</figcaption></figure>
          <div id="o-legend" class="note"></div>
        </div>
      </div>
    </section>
    </main>
    <script>
    "use strict";
    const $ = (id) => document.getElementById(id);
    const S = { model: null, checkpoint: 0, offset: 0, limit: 60, total: 0, source: null, forward: null, layer: 0, channel: 0, y: 0, x: 0,
                top: {}, seq: 0, listSeq: 0, topSeq: 0, occlusionSeq: 0 };
    const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

    function query(params) {
      return Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) => k + "=" + encodeURIComponent(v)).join("&");
    }
    async function api(path, params) {
      const response = await fetch(path + "?" + query(params || {}));
      const body = await response.json();
      if (!response.ok && response.status !== 202) throw new Error(body.error || response.statusText);
      return { status: response.status, body };
    }
    function sourceParams() { return S.source.upload ? { upload: S.source.upload } : { image: S.source.image }; }
    function className(c) { return S.model.classes[c] !== undefined ? c + " " + S.model.classes[c] : "class " + c; }
    function text(el, value) { el.textContent = value; }

    async function init() {
      // the first page of the list is asked for with the summary, not after it: the page is usable one round trip sooner
      const summary = api("/api/model"), firstPage = api("/api/images", listParams()).catch(() => null);
      S.model = (await summary).body;
      const m = S.model;
      S.checkpoint = m.checkpoint;
      text($("summary"), `${m.spec} (${m.activation}), input ${m.input.join("x")}, ${m.classes.length} classes` +
        (m.data ? `, ${m.test_images} test images of ${m.data}` : ", no data set (uploads only)"));
      for (const [c, name] of m.classes.entries()) {
        for (const id of ["f-class", "o-target"]) { const o = document.createElement("option"); o.value = c; o.textContent = c + " " + name; $(id).appendChild(o); }
      }
      if (m.checkpoints.length > 1) {
        $("epochs").hidden = false; $("epoch").max = m.checkpoints.length - 1; $("epoch").value = S.checkpoint;
      }
      showEpoch();
      $("o-window").max = Math.min(m.input[1], m.input[2]);
      $("o-window").value = Math.min(8, Math.max(1, Math.floor(Math.min(m.input[1], m.input[2]) / 2)));
      for (const id of ["f-class", "f-show", "f-sort", "f-order"]) $(id).addEventListener("change", () => { S.offset = 0; loadList(); });
      $("prev").addEventListener("click", () => { S.offset = Math.max(0, S.offset - S.limit); loadList(); });
      $("next").addEventListener("click", () => { if (S.offset + S.limit < S.total) { S.offset += S.limit; loadList(); } });
      $("epoch").addEventListener("input", () => { S.checkpoint = Number($("epoch").value); showEpoch(); S.top = {}; loadList(); if (S.source) selectImage(S.source, true); });
      for (const id of ["o-window", "o-stride", "o-target"]) $(id).addEventListener("change", loadOcclusion);
      $("bigmap").addEventListener("click", (e) => {
        const shape = layerShape(), r = $("bigmap").getBoundingClientRect();
        const x = Math.min(shape.width - 1, Math.floor((e.clientX - r.left) / r.width * shape.width));
        const y = Math.min(shape.height - 1, Math.floor((e.clientY - r.top) / r.height * shape.height));
        selectUnit(S.layer, S.channel, y, x);
      });
      document.addEventListener("keydown", onKey);
      setUpUpload();
      if (m.test_images > 0) await loadList(await firstPage); else $("browser").querySelector("#grid").textContent = "No test images (start explore with --data).";
      document.documentElement.dataset.status = "ready";
    }

    function showEpoch() {
      const c = S.model.checkpoints[S.checkpoint];
      text($("epoch-label"), `epoch ${c.epoch} (step ${c.step}): ${c.name}`);
    }

    function listParams() {  // before the summary has come, the default checkpoint (no checkpoint=)
      return { checkpoint: S.model ? S.checkpoint : null, offset: S.offset, limit: S.limit, class: $("f-class").value, show: $("f-show").value,
               sort: $("f-sort").value, order: $("f-order").value };
    }
    // shows the page of the list the controls choose; `prefetched` is the answer to that request, when given
    async function loadList(prefetched) {
      if (!S.model.test_images) return;
      const seq = ++S.listSeq, { status, body: page } = prefetched || await api("/api/images", listParams());
      if (seq !== S.listSeq) return;
      if (status === 202) {  // these images are not all classified yet
        $("range").innerHTML = `classifying the test split: <progress max="${page.total}" value="${page.done}"></progress> ${page.done} / ${page.total}`;
        setTimeout(() => { if (seq === S.listSeq) loadList(); }, 200);
        return;
      }
      S.total = page.total;
      text($("range"), page.total ? `${page.offset + 1}–${page.offset + page.images.length} of ${page.total}` : "no images match");
      const grid = $("grid");
      grid.replaceChildren();
      for (const v of page.images) {
        const cell = document.createElement("div");
        cell.className = "thumb" + (v.predicted === v.label ? "" : " wrong") + (S.source && S.source.image === v.image ? " selected" : "");
        cell.dataset.image = v.image;
        const img = document.createElement("img");
        img.className = "px"; img.alt = "test image " + v.image; img.width = 56; img.height = 56;
        img.src = v.thumbnail;
        const caption = document.createElement("div");
        caption.textContent = `#${v.image} ${S.model.classes[v.predicted]} ${(v.confidence * 100).toFixed(0)}%`;
        caption.title = `true: ${className(v.label)}; predicted: ${className(v.predicted)}, p = ${v.confidence.toFixed(4)}; loss ${v.loss.toFixed(3)}`;
        cell.append(img, caption);
        cell.addEventListener("click", () => selectImage({ image: v.image }));
        grid.appendChild(cell);
      }
    }

    async function selectImage(source, keepUnit) {
      S.source = source;
      const seq = ++S.seq;
      for (const t of document.querySelectorAll(".thumb")) t.classList.toggle("selected", source.image !== undefined && Number(t.dataset.image) === source.image);
      const forward = (await api("/api/forward", { checkpoint: S.checkpoint, ...sourceParams() })).body;
      if (seq !== S.seq) return;
      S.forward = forward;
      $("empty").hidden = true; $("one").hidden = false;
      text($("image-title"), forward.name);
      $("input").src = "/api/image?" + query(sourceParams());
      text($("input-caption"), forward.name + " as the network sees it");
      text($("conversion"), source.conversion ? "Conversion: " + source.conversion + "." : "");
      const p = forward.probabilities, order = p.map((v, i) => i).sort((a, b) => p[b] - p[a]).slice(0, 5);
      const verdict = `Predicted ${className(forward.predicted)}, p = ${p[forward.predicted].toFixed(4)}.` +
        (forward.label === undefined || forward.label === null ? " No true class (an uploaded image)." :
          ` True class ${className(forward.label)}, p = ${p[forward.label].toFixed(4)}: ${forward.label === forward.predicted ? "correct" : "wrong"}.`);
      text($("verdict"), verdict);
      const body = $("top5").tBodies[0];
      body.replaceChildren();
      for (const c of order) {
        const tr = document.createElement("tr");
        tr.innerHTML = `<td></td><td class="num">${p[c].toFixed(4)}</td><td><span class="bar" style="width:${Math.round(p[c] * 120)}px"></span></td>`;
        tr.cells[0].textContent = className(c) + (c === forward.label ? " (true)" : "");
        body.appendChild(tr);
      }
      drawLayers();
      if (keepUnit) selectUnit(S.layer, S.channel, S.y, S.x); else selectStrongest(S.layer, S.channel);
      loadOcclusion();
    }

    function layerShape(index) {
      const l = S.model.layers[index === undefined ? S.layer : index];
      return { channels: l.channels, height: l.height, width: l.width };
    }
    function mapValues(layer, channel) {
      const s = layerShape(layer), plane = s.height * s.width;
      return S.forward.layers[layer].values.slice(channel * plane, (channel + 1) * plane);
    }
    function drawMap(canvas, values, w, h, hi) {
      canvas.width = w; canvas.height = h;
      const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
      for (let i = 0; i < w * h; i++) {
        const t = hi > 0 ? Math.max(0, Math.min(1, values[i] / hi)) : 0, v = Math.round(t * 255);
        img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
    }
    function drawLayers() {
      const root = $("layers");
      root.replaceChildren();
      S.model.layers.forEach((l, li) => {
        const values = S.forward.layers[li].values, hi = values.reduce((a, b) => Math.max(a, b), 0);
        const div = document.createElement("div");
        div.className = "layer"; div.id = "layer-" + l.name;
        const name = document.createElement("div");
        name.className = "lname"; name.textContent = `${li + 1}: ${l.name}, ${l.channels} maps of ${l.height}x${l.width} (largest ${hi.toPrecision(4)})`;
        name.addEventListener("click", () => selectStrongest(li, 0));
        const maps = document.createElement("div");
        maps.className = "maps";
        const size = Math.max(28, Math.min(56, 4 * l.width));
        for (let c = 0; c < l.channels; c++) {
          const wrap = document.createElement("div");
          wrap.className = "map"; wrap.dataset.layer = li; wrap.dataset.channel = c; wrap.title = `${l.name} channel ${c}`;
          const canvas = document.createElement("canvas");
          canvas.className = "px"; canvas.style.width = size + "px"; canvas.style.height = size * l.height / l.width + "px";
          drawMap(canvas, mapValues(li, c), l.width, l.height, hi);
          wrap.appendChild(canvas);
          wrap.addEventListener("click", () => selectStrongest(li, c));
          maps.appendChild(wrap);
        }
        div.append(name, maps);
        root.appendChild(div);
      });
    }

    function selectStrongest(layer, channel) {
      const s = layerShape(layer), values = mapValues(layer, channel);
      let best = 0;
      for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
      selectUnit(layer, channel, Math.floor(best / s.width), best % s.width);
    }

    function selectUnit(layer, channel, y, x) {
      const s = layerShape(layer);
      S.layer = layer; S.channel = Math.max(0, Math.min(s.channels - 1, channel));
      S.y = Math.max(0, Math.min(s.height - 1, y)); S.x = Math.max(0, Math.min(s.width - 1, x));
      const l = S.model.layers[layer];
      for (const d of document.querySelectorAll(".layer")) d.classList.toggle("selected", d.id === "layer-" + l.name);
      for (const m of document.querySelectorAll(".map")) m.classList.toggle("selected", Number(m.dataset.layer) === layer && Number(m.dataset.channel) === S.channel);
      const values = mapValues(layer, S.channel), hi = S.forward.layers[layer].values.reduce((a, b) => Math.max(a, b), 0);
      drawMap($("bigmap"), values, s.width, s.height, hi);
      const ctx = $("bigmap").getContext("2d");
      ctx.strokeStyle = "#e0302a"; ctx.lineWidth = 0.25; ctx.strokeRect(S.x + 0.125, S.y + 0.125, 0.75, 0.75);
      const value = values[S.y * s.width + S.x];
      text($("unit-title"), `Unit: ${l.name} channel ${S.channel} at (${S.y}, ${S.x}), activation ${value.toPrecision(4)}` +
        (value > 0 || S.model.activation !== "relu" ? "" : " (inactive: its guided and gradient projections are zero, flat gray)"));
      text($("bigmap-caption"), `${l.name} channel ${S.channel}: click a position`);
      const params = { checkpoint: S.checkpoint, ...sourceParams(), layer: l.name, channel: S.channel, y: S.y, x: S.x };
      for (const method of ["deconvnet", "guided", "gradient"]) $("proj-" + method).src = "/api/project?" + query({ ...params, method, format: "png" });
      const f = l.receptive_field, row = f.offset + S.y * f.jump, column = f.offset + S.x * f.jump;
      const scale = 168 / S.model.input[2], box = $("input-field");
      box.hidden = false;
      Object.assign(box.style, { left: column * scale - 2 + "px", top: row * scale - 2 + "px", width: f.size * scale + "px", height: f.size * scale + "px" });
      drawPatch(row, column, f.size);
      text($("patch-caption"), `receptive field ${f.size}x${f.size}, rows ${row}–${row + f.size - 1}, columns ${column}–${column + f.size - 1}`);
      loadTop();
    }

    function drawPatch(row, column, size) {
      const canvas = $("patch"), ctx = canvas.getContext("2d"), img = $("input");
      canvas.width = size; canvas.height = size;
      const paint = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, size, size); ctx.drawImage(img, -column, -row); };
      if (img.complete && img.naturalWidth) paint(); else img.addEventListener("load", paint, { once: true });
    }

    function onKey(e) {
      if (!S.forward || e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
      const n = S.model.layers.length;
      const moves = { ArrowLeft: [0, 0, -1], ArrowRight: [0, 0, 1], ArrowUp: [0, -1, 0], ArrowDown: [0, 1, 0], "[": [-1, 0, 0], "]": [1, 0, 0] };
      let move = moves[e.key];
      if (e.shiftKey && (e.key === "ArrowLeft" || e.key === "ArrowRight")) move = [e.key === "ArrowLeft" ? -1 : 1, 0, 0];
      if (move) {
        e.preventDefault();
        const s = layerShape();
        if (move[0]) selectStrongest(S.layer, (S.channel + move[0] + s.channels) % s.channels);
        else selectUnit(S.layer, S.channel, S.y + move[1], S.x + move[2]);
      } else if (e.key >= "1" && e.key <= "9" && Number(e.key) <= n) {
        selectStrongest(Number(e.key) - 1, 0);
      } else if (e.key === "," || e.key === ".") {
        selectStrongest((S.layer + (e.key === "," ? n - 1 : 1)) % n, 0);
      }
    }

    async function loadTop() {
      const l = S.model.layers[S.layer], key = S.checkpoint + "/" + l.name, channel = S.channel, seq = ++S.topSeq;
      text($("top9-title"), `Top 9 of ${l.name} channel ${channel} in the test split`);
      if (!S.model.test_images) { text($("top9-status"), "No data set to search."); $("top9").replaceChildren(); return; }
      if (!S.top[key]) {
        for (;;) {
          const { status, body } = await api("/api/top", { checkpoint: S.checkpoint, layer: l.name });
          if (status === 200) { S.top[key] = body; break; }
          if (seq !== S.topSeq) return;  // another unit is selected: its own loadTop shows the progress
          $("top9-status").innerHTML = `searching the test split for ${l.name}'s top 9 (once; cached beside the checkpoint): <progress max="${body.total}" value="${body.done}"></progress> ${body.done} / ${body.total}`;
          await new Promise((r) => setTimeout(r, 150));
          if (seq !== S.topSeq) return;
        }
      }
      if (seq !== S.topSeq) return;
      text($("top9-status"), "");
      const root = $("top9");
      root.replaceChildren();
      for (const hit of S.top[key].channels[channel]) {
        const tile = document.createElement("div");
        tile.className = "tile";
        const p = { checkpoint: S.checkpoint, image: hit.image, layer: l.name, channel, y: hit.unit.y, x: hit.unit.x, method: "deconvnet", format: "png" };
        const proj = document.createElement("img"), img = document.createElement("img");
        proj.className = img.className = "px"; proj.width = proj.height = img.width = img.height = 56;
        proj.src = "/api/project?" + query(p); proj.alt = "projection"; img.src = "/api/image?image=" + hit.image; img.alt = "test image " + hit.image;
        img.style.cursor = "pointer"; img.addEventListener("click", () => selectImage({ image: hit.image }));
        const caption = document.createElement("div");
        caption.textContent = `#${hit.image} (${hit.unit.y}, ${hit.unit.x}) ${hit.value.toPrecision(3)}`;
        tile.append(proj, img, caption);
        root.appendChild(tile);
      }
    }

    function heat(t) {
      const c = (s) => Math.round(Math.max(0, Math.min(1, (t - s) * 3)) * 255);
      return [c(0), c(1 / 3), c(2 / 3)];
    }
    function drawGrid(canvas, rows, cols, color) {
      canvas.width = cols; canvas.height = rows;
      const ctx = canvas.getContext("2d"), img = ctx.createImageData(cols, rows);
      for (let i = 0; i < rows * cols; i++) { const [r, g, b] = color(i); img.data.set([r, g, b, 255], 4 * i); }
      ctx.putImageData(img, 0, 0);
    }
    async function loadOcclusion() {
      if (!S.source) return;
      const seq = ++S.occlusionSeq;
      text($("occlusion-status"), "computing the occlusion maps…");
      $("occlusion").style.opacity = 0.5;
      try {
        const params = { checkpoint: S.checkpoint, ...sourceParams(), window: $("o-window").value, stride: $("o-stride").value, target: $("o-target").value };
        const started = performance.now();
        const o = (await api("/api/occlusion", params)).body;
        if (seq !== S.occlusionSeq) return;
        const lo = Math.min(...o.class_score), hi = Math.max(...o.class_score);
        drawGrid($("o-score"), o.rows, o.cols, (i) => heat(hi > lo ? (o.class_score[i] - lo) / (hi - lo) : 0));
        drawGrid($("o-class"), o.rows, o.cols, (i) => { const h = PALETTE[o.most_probable_class[i] % 10]; return [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16)); });
        const fa = o.feature_activity, flo = Math.min(...fa), fhi = Math.max(...fa);
        drawGrid($("o-feature"), o.rows, o.cols, (i) => heat(fhi > flo ? (fa[i] - flo) / (fhi - flo) : 0));
        text($("o-score-caption"), `p(${className(o.target)}) (${o.target_source}) by occluder position: ${lo.toFixed(3)} black to ${hi.toFixed(3)} white; unoccluded ${o.base_score.toFixed(3)}`);
        text($("o-feature-caption"), `${o.feature_layer} channel ${o.feature_channel}: total activity, ${flo.toPrecision(3)} black to ${fhi.toPrecision(3)} white`);
        const seen = [...new Set(o.most_probable_class)].sort((a, b) => a - b);
        $("o-legend").innerHTML = seen.map((c) => `<div><span class="bar" style="width:10px;background:${PALETTE[c % 10]}"></span> <span></span></div>`).join("");
        [...$("o-legend").querySelectorAll("span:not(.bar)")].forEach((s, i) => { s.textContent = className(seen[i]); });
        text($("occlusion-status"), `${o.window}x${o.window} gray occluder, stride ${o.stride}: ${o.rows * o.cols} positions in ${Math.round(performance.now() - started)} ms`);
      } catch (error) {
        if (seq === S.occlusionSeq) { text($("occlusion-status"), error.message); $("occlusion-status").className = "status error"; }
        return;
      } finally {
        if (seq === S.occlusionSeq) $("occlusion").style.opacity = 1;
      }
      $("occlusion-status").className = "status";
    }

    function setUpUpload() {
      const drop = $("drop");
      drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
      drop.addEventListener("dragleave", () => drop.classList.remove("over"));
      drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]); });
      $("file").addEventListener("change", () => { if ($("file").files[0]) upload($("file").files[0]); });
    }
    async function upload(file) {
      const status = $("upload-status");
      status.className = "status";
      if (file.size > S.model.maximum_upload_bytes) { text(status, `${file.name} is larger than ${S.model.maximum_upload_bytes} bytes`); status.className = "status error"; return; }
      text(status, "uploading " + file.name + "…");
      const response = await fetch("/api/upload", { method: "POST", body: file });
      const body = await response.json();
      if (!response.ok) { text(status, body.error); status.className = "status error"; return; }
      text(status, `${file.name}: ${body.conversion}`);
      await selectImage({ upload: body.upload, conversion: body.conversion });
    }

    init().catch((error) => { text($("summary"), "cannot load: " + error.message); document.documentElement.dataset.status = "error"; });
    </script>
    </body></html>
    """#
}
