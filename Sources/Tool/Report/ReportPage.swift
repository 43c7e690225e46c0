import Foundation
import Net

/// The HTML report of one or more runs: one self-contained page (inline CSS, SVG and a few lines of
/// JavaScript; images as `data:` URIs) that needs no network.
///
/// Up to `overlayLimit` runs share each chart, one colour per run; above that every run gets its own
/// small chart (small multiples) and the sortable table carries the comparison. The best run (by best
/// test accuracy, else training accuracy) is starred in the table and framed in small multiples.
struct ReportPage {
    var runs: [RunRecord]
    var title = "deconvnet training report"
    static let overlayLimit = 10
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    private let catalog = ModelCatalog()

    init(runs: [RunRecord], title: String? = nil) {
        self.runs = runs
        if let title { self.title = title }
    }

    /// Index of the best run, if any run has metrics: highest `rankingAccuracy`, ties to the lower final loss.
    var bestIndex: Int? {
        func rank(_ i: Int) -> (Float, Float) {
            let final = runs[i].final
            return (runs[i].rankingAccuracy ?? -1, -(final?.testLoss ?? final?.trainLoss ?? .infinity))
        }
        return runs.indices.filter { runs[$0].rankingAccuracy != nil }.max { rank($0) < rank($1) }
    }

    private var overlaid: Bool { runs.count <= Self.overlayLimit }

    /// Runs whose activation statistics and filters are shown: all when overlaid, else the best one.
    private var detailedRuns: [Int] { overlaid ? Array(runs.indices) : bestIndex.map { [$0] } ?? [] }

    private func color(_ index: Int) -> String { Self.palette[index % Self.palette.count] }

    var html: String {
        var body = "<h1>\(escape(title))</h1>\n"
        let generated = ISO8601DateFormatter().string(from: Date())
        body += "<p class=\"meta\">\(runs.count) run\(runs.count == 1 ? "" : "s") · generated \(generated)"
        if let best = bestIndex, runs.count > 1 { body += " · best: <b>\(escape(runs[best].name))</b>" }
        body += "</p>\n"
        body += section("Results", resultsTable())
        body += section("Training curves", overlaid ? overlayCharts() : smallMultiples())
        body += section("Activation statistics", activationSection())
        body += section("First-layer filters", filterSection())
        body += section("Model", modelSection())
        body += section("Settings", settingsSection())
        return Self.document(title: title, body: body)
    }

    /// A whole page around `body` with the report's style sheet (plus `css`) and script, which marks
    /// `<html data-status>` for `Tests/browser/check_report.sh`. Used by the report and by `inspect`.
    static func document(title: String, body: String, css extra: String = "") -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title))</title>
        <script>window.reportErrors = []; window.addEventListener('error', function (e) { window.reportErrors.push(String(e.message)); });</script>
        <style>\(css)\(extra)</style></head>
        <body>
        \(body)
        <script>\(script)</script>
        </body></html>

        """
    }

    private func section(_ heading: String, _ content: String) -> String {
        content.isEmpty ? "" : "<section><h2>\(heading)</h2>\n\(content)</section>\n"
    }

    // MARK: Results table

    private func resultsTable() -> String {
        let settings = varyingSettings(runs)
        let summaries = runs.map(catalog.summary)
        let sharedModel = runs.count > 1 && Set(summaries.map(\.model)).count == 1 && Set(summaries.map(\.parameters)).count == 1
        let columns = [RunColumn.run] + settings.keys.map { RunColumn.setting($0, values: settings.values[$0] ?? [:]) }
            + RunColumn.comparison.dropFirst().filter { !sharedModel || ($0.header != "model" && $0.header != "parameters") }
        let table = runTable(summaries, columns: columns)
        var out = "<div class=\"scroll\"><table class=\"sortable results\"><thead><tr>"
        for (c, header) in table.header.enumerated() {
            out += "<th class=\"\(columns[c].text ? "text" : "num")\" title=\"sort\">\(escape(header))</th>"
        }
        out += "</tr></thead><tbody>\n"
        for (i, row) in table.rows.enumerated() {
            let best = i == bestIndex && runs.count > 1
            out += best ? "<tr class=\"best\">" : "<tr>"
            for (c, cell) in row.enumerated() {
                var text = escape(cell)
                if c == 0 {
                    let swatch = overlaid && runs.count > 1 ? "<span class=\"swatch\" style=\"background:\(color(i))\"></span>" : ""
                    text = swatch + text + (best ? " <span class=\"star\" title=\"best test accuracy\">★</span>" : "")
                }
                if columns[c].header == "best test acc", let epoch = summaries[i].bestEpoch { text += " <small>(epoch \(epoch))</small>" }
                out += "<td class=\"\(columns[c].text ? "text" : "num")\">\(text)</td>"
            }
            out += "</tr>\n"
        }
        out += "</tbody></table></div>\n<p class=\"note\">"
        if sharedModel, let model = summaries[0].model { out += "All runs train \(escape(model))\(summaries[0].parameters.map { " (\(grouped($0)) parameters)" } ?? ""). " }
        out += "Click a column to sort. Accuracies in percent; losses as the training loss function reports them; s/epoch and images/s are means over the epochs (training only, without evaluation).</p>\n"
        return out
    }

    // MARK: Curves

    /// Line styles tell train from test; colours tell runs apart (or, for one run, train from test too).
    private func curve(_ title: String, y yLabel: String, x xLabel: String = "epoch", yDomain: ClosedRange<Double>? = nil, log: Bool = false,
                       _ values: [(label: String, dash: LineChart.Dash, value: (EpochMetrics) -> Double?)],
                       x xValue: (EpochMetrics) -> Double = { Double($0.epoch) }) -> String {
        var chart = LineChart(title: title, xLabel: xLabel, yLabel: yLabel, yDomain: yDomain, autoLogY: log)
        let single = runs.count == 1
        for (i, run) in runs.enumerated() {
            for (v, value) in values.enumerated() {
                let points = run.metrics.compactMap { m in value.value(m).map { (x: xValue(m), y: $0) } }
                guard !points.isEmpty else { continue }
                chart.series.append(.init(label: "\(run.name) \(value.label)", color: single ? color(v) : color(i), points: points,
                                          dash: single ? .solid : value.dash, width: i == bestIndex && !single ? 2.4 : 1.6))
            }
        }
        if single {
            chart.legend = values.enumerated().filter { v in chart.series.contains { $0.label.hasSuffix(v.element.label) } }
                .map { .init(label: $0.element.label, color: color($0.offset)) }
        } else {
            chart.legend = runs.indices.map { .init(label: runs[$0].name + (runs[$0].diverged ? " (diverged)" : ""), color: color($0)) }
            if values.count > 1 { chart.legend += values.map { .init(label: $0.label, color: "#555", dash: $0.dash) } }
        }
        return chart.svg
    }

    private func lossAndAccuracy(x xLabel: String, _ xValue: @escaping (EpochMetrics) -> Double) -> String {
        curve("Loss", y: "loss", x: xLabel, log: true, [("train", .solid, { Double($0.trainLoss) }), ("test", .dashed, { $0.testLoss.map(Double.init) })], x: xValue)
            + curve("Accuracy", y: "accuracy (%)", x: xLabel, yDomain: 0...100,
                    [("train", .solid, { Double($0.trainAcc) * 100 }), ("test", .dashed, { $0.testAcc.map { Double($0) * 100 } })], x: xValue)
    }

    private func overlayCharts() -> String {
        guard runs.contains(where: { !$0.metrics.isEmpty }) else { return "<p class=\"note\">No epoch has finished yet.</p>\n" }
        var out = "<div class=\"charts\">" + lossAndAccuracy(x: "epoch") { Double($0.epoch) }
        out += curve("Learning rate at epoch end", y: "learning rate", log: true, [("lr", .solid, { Double($0.lr) })])
        out += curve("Seconds per epoch", y: "seconds (training only)", [("s/epoch", .solid, { $0.seconds })])
        out += curve("Throughput", y: "images per second", [("images/s", .solid, { $0.imagesPerSecond })])
        out += "</div>\n<details><summary>Loss and accuracy against steps</summary><div class=\"charts\">"
        out += lossAndAccuracy(x: "step") { Double($0.step) } + "</div></details>\n"
        return out
    }

    private func smallMultiples() -> String {
        let losses = runs.flatMap { $0.metrics.flatMap { [Double($0.trainLoss)] + ($0.testLoss.map { [Double($0)] } ?? []) } }.filter(\.isFinite)
        let lossDomain = 0...max(1e-6, losses.max() ?? 1)
        var out = "<p class=\"note\">\(runs.count) runs: one small chart per run (solid: train, dashed: test); the best run is framed in gold. Hover a line for its run.</p>\n"
        for (heading, domain, train, test) in [("Accuracy (%)", 0...100.0, { (m: EpochMetrics) -> Double? in Double(m.trainAcc) * 100 }, { (m: EpochMetrics) -> Double? in m.testAcc.map { Double($0) * 100 } }),
                                               ("Loss", lossDomain, { (m: EpochMetrics) -> Double? in Double(m.trainLoss) }, { (m: EpochMetrics) -> Double? in m.testLoss.map(Double.init) })] {
            out += "<h3>\(heading)</h3><div class=\"multiples\">"
            for (i, run) in runs.enumerated() {
                var chart = LineChart(title: shortened(run.name, to: 80) + (run.diverged ? " (diverged)" : ""), xLabel: "epoch",
                                      yLabel: heading.lowercased(), width: 230, plotHeight: 110, yDomain: domain, titleLineSlots: 2, highlighted: i == bestIndex)
                for (label, value, dash) in [("train", train, LineChart.Dash.solid), ("test", test, .dashed)] {
                    let points = run.metrics.compactMap { m in value(m).map { (x: Double(m.epoch), y: $0) } }
                    if !points.isEmpty { chart.series.append(.init(label: "\(run.name) \(label)", color: color(label == "train" ? 0 : 1), points: points, dash: dash)) }
                }
                out += "<div class=\"multiple\" title=\"\(escape(run.name))\">" + chart.svg + "</div>"
            }
            out += "</div>\n"
        }
        return out
    }

    // MARK: Activations and filters

    private func activationSection() -> String {
        var out = ""
        let shown = detailedRuns.filter { !runs[$0].activations.isEmpty }
        if shown.isEmpty { return "" }
        if !overlaid { out += "<p class=\"note\">Shown for the best run only (\(runs.count) runs).</p>\n" }
        for (n, i) in shown.enumerated() {
            let run = runs[i]
            let order = catalog.model(of: run)?.layers.map(\.name) ?? []
            out += "<details\(n == 0 ? " open" : "")><summary>\(escape(run.name))</summary><div class=\"charts\">"
            for layer in run.activationLayers(order: order) {
                let stats = run.activations.compactMap { r in r.layers[layer].map { (x: Double(r.epoch), s: $0) } }
                var values = LineChart(title: "\(layer): activations", xLabel: "epoch (0 = before training)", yLabel: "value", width: 340, plotHeight: 150)
                values.bands = [.init(color: color(0), points: stats.map { (x: $0.x, lower: Double($0.s.mean - $0.s.std), upper: Double($0.s.mean + $0.s.std)) })]
                values.series = [
                    .init(label: "mean", color: color(0), points: stats.map { ($0.x, Double($0.s.mean)) }, width: 2),
                    .init(label: "min", color: "#666", points: stats.map { ($0.x, Double($0.s.min)) }, dash: .dotted, width: 1.2),
                    .init(label: "max", color: "#666", points: stats.map { ($0.x, Double($0.s.max)) }, dash: .dotted, width: 1.2),
                    .init(label: "median", color: color(2), points: stats.map { ($0.x, Double($0.s.median)) }, dash: .dashed, width: 1.2),
                ]
                values.legend = [.init(label: "mean", color: color(0)), .init(label: "± std", color: color(0), band: true),
                                 .init(label: "min / max", color: "#666", dash: .dotted), .init(label: "median", color: color(2), dash: .dashed)]
                var zeros = LineChart(title: "\(layer): fraction of zeros", xLabel: "epoch", yLabel: "zeros (%)", width: 340, plotHeight: 70, yDomain: 0...100)
                zeros.series = [.init(label: "zero fraction", color: color(3), points: stats.map { ($0.x, Double($0.s.zeroFraction) * 100) })]
                out += "<div class=\"layer\">" + values.svg + zeros.svg + "</div>"
            }
            out += "</div></details>\n"
        }
        return out
    }

    private func filterSection() -> String {
        var out = ""
        for i in detailedRuns {
            guard let path = runs[i].filterImage, let bytes = FileManager.default.contents(atPath: path) else { continue }
            let size = (try? Image(contentsOfFile: path)).map { ($0.width, $0.height) }
            let scale = size.map { max(1, min(8, 900 / max(1, $0.0))) } ?? 1
            let dims = size.map { " width=\"\($0.0 * scale)\" height=\"\($0.1 * scale)\"" } ?? ""
            let caption = path.hasSuffix("strip.png") ? "rows: epochs in order, top = before training" : URL(fileURLWithPath: path).lastPathComponent
            out += "<figure><img class=\"filters\" alt=\"first-layer filters of \(escape(runs[i].name))\" src=\"data:image/png;base64,\(bytes.base64EncodedString())\"\(dims)>"
            out += "<figcaption>\(escape(runs[i].name)): \(caption)</figcaption></figure>\n"
        }
        return out.isEmpty ? "" : "<div class=\"charts\">\n\(out)</div>\n"
    }

    // MARK: Model and settings

    private func modelSection() -> String {
        var groups: [(key: String, runs: [Int])] = []
        for (i, run) in runs.enumerated() {
            guard let key = run.model?.key else { continue }
            if let g = groups.firstIndex(where: { $0.key == key }) { groups[g].runs.append(i) } else { groups.append((key, [i])) }
        }
        var out = ""
        for group in groups {
            let first = runs[group.runs[0]]
            guard let model = catalog.model(of: first), let info = first.model else { continue }
            let activations = Set(group.runs.compactMap { runs[$0].model?.activation }).sorted().joined(separator: " or ")
            out += "<h3>\(escape(info.spec)) <small>(\(escape(activations)), input \(info.inputShape.map(String.init).joined(separator: "x")), \(info.classNames.count) classes)</small></h3>\n"
            if runs.count > 1 { out += "<p class=\"note\">Used by \(group.runs.count == runs.count ? "all runs" : group.runs.map { escape(runs[$0].name) }.joined(separator: ", ")).</p>\n" }
            out += htmlTable(layerTable(model), className: "summary")
            let macs = model.layers.reduce(0) { $0 + $1.multiplyAdds }
            out += String(format: "<p class=\"note\">Forward pass %.2f MFLOP per image; a training step about three times that.</p>\n", Double(2 * macs) / 1e6)
        }
        return out
    }

    private func settingsSection() -> String {
        let settings = varyingSettings(runs)
        let keys = settingNames.dropFirst().map(\.name).filter { !settings.keys.contains($0) }
        guard let first = runs.first(where: { $0.config != nil }) else { return "" }
        var rows = keys.compactMap { key in settings.values[key]?[first.path].map { [key, $0] } }
        rows.append(["data", first.config?.data ?? ""])
        let heading = runs.count > 1 ? "<p class=\"note\">Settings shared by all runs (those that differ are columns of the results table).</p>\n" : ""
        return heading + htmlTable(TextTable(header: ["setting", "value"], rows: rows, leftAligned: [0, 1]), className: "settings")
    }

    private func htmlTable(_ table: TextTable, className: String) -> String {
        func cells(_ row: [String], tag: String) -> String {
            row.enumerated().map { c, cell in "<\(tag) class=\"\(table.leftAligned.contains(c) ? "text" : "num")\">\(escape(cell))</\(tag)>" }.joined()
        }
        return "<table class=\"\(className)\"><thead><tr>\(cells(table.header, tag: "th"))</tr></thead><tbody>"
            + table.rows.map { "<tr>\(cells($0, tag: "td"))</tr>" }.joined(separator: "\n") + "</tbody></table>\n"
    }

    private func shortened(_ text: String, to length: Int) -> String {
        text.count <= length ? text : String(text.prefix(length - 1)) + "…"
    }

    // MARK: Style and script

    static let css = """
    body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px 32px; color: #222; background: #fff; }
    h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
    h3 { font-size: 15px; margin: 16px 0 6px; } h3 small { color: #666; font-weight: normal; }
    .meta, .note { color: #555; font-size: 13px; margin: 4px 0 10px; }
    table { border-collapse: collapse; font-size: 13px; } th, td { padding: 4px 9px; border-bottom: 1px solid #e4e4e4; white-space: nowrap; }
    th { background: #f4f4f4; text-align: left; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
    table.sortable th { cursor: pointer; user-select: none; } table.sortable th:hover { background: #e8e8e8; }
    th[aria-sort=ascending]::after { content: " ▲"; font-size: 10px; } th[aria-sort=descending]::after { content: " ▼"; font-size: 10px; }
    tr.best td { background: #fff6d6; font-weight: 600; } .star { color: #d4a017; }
    .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: baseline; }
    .scroll { overflow-x: auto; max-width: 100%; }
    .charts { display: flex; flex-wrap: wrap; gap: 18px 26px; align-items: flex-start; }
    .multiples { display: flex; flex-wrap: wrap; gap: 8px; } .layer { display: flex; flex-direction: column; gap: 2px; }
    \(LineChart.css)
    details { margin: 8px 0; } summary { cursor: pointer; font-weight: 600; margin-bottom: 8px; }
    figure { margin: 8px 0 16px; } figcaption { color: #555; font-size: 13px; }
    img.filters { image-rendering: pixelated; border: 1px solid #ccc; max-width: 100%; height: auto; }
    """

    /// Sorting by clicking a header (numbers by value, empty cells last), then a readiness mark for
    /// the browser check: `data-status="ok"` on `<html>` once the page loaded with no script error and
    /// every image decoded. With `#selftest` in the URL it first sorts every column both ways and checks the order.
    static let script = """
    (function () {
      function key(cell) {
        var t = cell.textContent.replace(/\\(.*\\)|[,%★]/g, '').trim();
        var n = parseFloat(t);
        return t === '' ? null : (isNaN(n) || !/^[-+0-9.eE]+$/.test(t) ? t.toLowerCase() : n);
      }
      function compare(a, b) {
        if (a === null || b === null) return a === b ? 0 : (a === null ? 1 : -1);
        if (typeof a !== typeof b) return typeof a === 'number' ? -1 : 1;
        return a < b ? -1 : a > b ? 1 : 0;
      }
      function sortBy(th) {
        var table = th.closest('table'), body = table.tBodies[0], col = th.cellIndex;
        var ascending = th.getAttribute('aria-sort') !== 'ascending';
        table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r, s) {
          var a = key(r.cells[col]), b = key(s.cells[col]);
          if (a === null || b === null) return compare(a, b);
          return ascending ? compare(a, b) : compare(b, a);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      document.querySelectorAll('table.sortable th').forEach(function (th) { th.addEventListener('click', function () { sortBy(th); }); });
      function selfTest() {
        document.querySelectorAll('table.sortable th').forEach(function (th) {
          [1, -1].forEach(function (sign) {
            th.click();
            var keys = Array.prototype.map.call(th.closest('table').tBodies[0].rows, function (r) { return key(r.cells[th.cellIndex]); })
              .filter(function (k) { return k !== null; });
            for (var i = 1; i < keys.length; i++) {
              if (sign * compare(keys[i - 1], keys[i]) > 0) { window.reportErrors.push('column ' + th.textContent + ' not sorted'); break; }
            }
          });
        });
      }
      window.addEventListener('load', function () {
        if (location.hash === '#selftest') selfTest();
        var broken = Array.prototype.filter.call(document.images, function (i) { return !(i.complete && i.naturalWidth > 0); }).length;
        if (broken) window.reportErrors.push(broken + ' image(s) failed to load');
        document.documentElement.setAttribute('data-status', window.reportErrors.length ? 'errors: ' + window.reportErrors.join('; ') : 'ok');
      });
    })();
    """
}
