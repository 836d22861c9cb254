"""The benchmark's results as a markdown table (what RESULTS.md holds)."""

from benchmarks.configs import BenchConfig


def format_table(results, command=None):
    """The results as markdown: a header on the machine, then one table per config."""
    m = results["machine"]
    lines = [
        f"- Date: {results['date']}",
        f"- Machine: {m['cpu']} ({m['simd']}), {m['cpus']} CPUs, {m['memory_gib']} GiB RAM, "
        f"{m['os']}, Python {m['python']}; device {results['device']}, "
        f"{results['threads']} threads per framework",
        f"- Repetitions: {results['reps']} (interleaved; median shown, min-max beside it)",
    ]
    if command:
        lines.append(f"- Command: `{command}`")
    versions = {}
    for c in results["configs"]:
        for row in c["rows"]:
            versions.update(row.get("versions") or {})
    if versions:
        lines.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    for c in results["configs"]:
        cfg = c["config"]
        lines += ["", f"### {cfg['name']}", "",
                  f"{cfg['image_size']}x{cfg['image_size']}, patch {cfg['patch_size']}, width "
                  f"{cfg['hidden_size']}, depth {cfg['num_layers']}, heads {cfg['num_heads']}, "
                  f"MLP {cfg['mlp_dim']}, {cfg['num_classes']} classes, batch "
                  f"{cfg['batch_size']}, {cfg['dtype']}, {cfg['steps']} steps per rep; "
                  f"{BenchConfig(**cfg).forward_flops() / 1e9:.3g} GFLOPs per image forward."]
        if c.get("load"):
            lines.append(f"Load average (1 min) at the start and end: {c['load'][0]} and "
                         f"{c['load'][1]} on {m['cpus']} CPUs.")
        if c["matmul"]:
            shapes = ("8192x8192x8192 products" if str(results["device"]).startswith("gpu")
                      and "dry run" not in str(results["device"]) else "the model's GEMM shapes")
            lines.append(f"Matrix-multiply throughput on {shapes}: " + ", ".join(
                f"{lib} {v / 1e9:.1f}" for lib, v in sorted(c["matmul"].items()))
                + f" GFLOP/s; peak = {c['peak_flops_per_s'] / 1e9:.1f} GFLOP/s.")
        peers = [r for r in c["rows"] if r.get("images_per_s")
                 and r["runner"]["framework"] != "keras_vit"]
        best_peer = max(peers, key=lambda r: r["images_per_s"]) if peers else None
        ours = [r for r in c["rows"] if r.get("images_per_s")
                and r["runner"]["framework"] == "keras_vit"]
        head = "| framework | images/s (median) | min-max | vs fastest peer | peak RSS MiB |"
        rule = "|---|---:|---:|---:|---:|"
        device_memory = any(r.get("peak_device_mib") for r in c["rows"])
        if device_memory:
            head += " peak GPU MiB |"
            rule += "---:|"
        if c["matmul"]:
            head += " GFLOP/s | % of matmul peak |"
            rule += "---:|---:|"
        lines += ["", head, rule]
        for row in c["rows"]:
            if row.get("skipped"):
                lines.append(f"| {row['label']} | skipped: {row['skipped']} |")
                continue
            if not row.get("images_per_s"):
                lines.append(f"| {row['label']} | not run: {row.get('error', 'no result')} |")
                continue
            ratio = (f"{row['images_per_s'] / best_peer['images_per_s']:.2f}x"
                     if best_peer else "-")
            line = (f"| {row['label']} | {row['images_per_s']:.2f} | "
                    f"{min(row['all']):.2f}-{max(row['all']):.2f} | {ratio} | "
                    f"{row['peak_rss_mib']:.0f} |")
            if device_memory:
                line += f" {row.get('peak_device_mib') or 0:.0f} |"
            if c["matmul"]:
                line += (f" {row['flops_per_s'] / 1e9:.1f} | "
                         f"{100 * row['fraction_of_peak']:.0f} % |")
            lines.append(line)
        if best_peer and ours:
            best = max(ours, key=lambda r: r["images_per_s"])
            lines += ["", f"Fastest keras_vit: {best['label']} at "
                      f"{best['images_per_s'] / best_peer['images_per_s']:.2f}x the fastest "
                      f"peer, {best_peer['label']}."]
    if results.get("not_run"):
        lines += ["", "Not run (they would have started past the time limit): "
                  + ", ".join(results["not_run"]) + "."]
    return "\n".join(lines) + "\n"

