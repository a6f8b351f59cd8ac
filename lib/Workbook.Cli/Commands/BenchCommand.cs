using System.CommandLine;
using Workbook.Diagnostics;
using Workbook.Progress;
using Workbook.Model;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook bench patching</c>: plain vs patched forward times of the patching benchmark's workload on a device.</summary>
public static class BenchCommand
{
    public static Command Build()
    {
        var bench = new Command("bench", "Performance measurements on a device (wall clock with device synchronisation).");
        bench.Subcommands.Add(BuildPatching());
        bench.Subcommands.Add(BuildFigure());
        bench.Subcommands.Add(BuildPrecision());
        bench.Subcommands.Add(BuildSweep());
        return bench;
    }

    static Command BuildSweep()
    {
        var workload = new Argument<string>("workload") { Description = "acdc (an ACDC threshold sweep on one model), figure5 (the ACDC part of Figure 5: both Tracr models, 120 thresholds) or curve (a faithfulness curve's circuit sizes under the paper's four methodologies)." };
        workload.AcceptOnlyFromAmong(SweepBenchmark.Workloads.ToArray());
        var model = new Option<string>("--model", "-m") { Description = "acdc, curve: toy-ioi, tracr-reverse or tracr-xproportion.", DefaultValueFactory = _ => "toy-ioi" };
        var prompts = new Option<int?>("--prompts", "-n") { Description = "Prompts (default: acdc on toy-ioi 8, on Tracr 200; figure5 200, the paper's)." }
            .Within(1, OptionLimits.MaxPrompts, "prompts per dataset part");
        var exponents = new Option<string?>("--tau-exponents") { Description = "acdc: threshold exponents FROM..TO (default: toy-ioi -3..-1, Tracr the paper's -25..-2)." };
        var perForward = TaskInputs.CircuitsPerForward();
        var threads = new Option<int>("--threads") { Description = "libtorch threads.", DefaultValueFactory = _ => 1 }
            .Within(1, OptionLimits.MaxThreads, $"this machine has {OptionLimits.MaxThreads} processors");
        var rounds = new Option<int>("--rounds") { Description = "Timed rounds of each path, alternating which goes first (the median is reported).", DefaultValueFactory = _ => SweepBenchmark.DefaultRounds }
            .Within(1, OptionLimits.MaxRepeat);
        var json = CommonOptions.Json();
        var cmd = new Command("sweep", "Circuits per second of a sweep evaluated one circuit at a time and with circuits stacked in one forward pass " +
                                       "(--circuits-per-forward; default from the memory estimate, even on the CPU), back to back in one process, and whether both agree.")
        {
            workload, model, prompts, exponents, perForward, threads, rounds, json,
        };
        cmd.SetAction(parse =>
        {
            string m = parse.GetValue(model)!;
            bool toy = m == "toy-ioi";
            IReadOnlyList<int>? taus = null;
            if (parse.GetValue(exponents) is string e)
            {
                var range = e.Split("..");
                if (range.Length != 2 || !int.TryParse(range[0], out int from) || !int.TryParse(range[1], out int to) || to < from || to - from >= OptionLimits.MaxTauExponents
                    || Math.Abs(from) > OptionLimits.MaxTauMagnitude || Math.Abs(to) > OptionLimits.MaxTauMagnitude)
                    throw new ArgumentException($"--tau-exponents must be FROM..TO within -{OptionLimits.MaxTauMagnitude}..{OptionLimits.MaxTauMagnitude}, at most {OptionLimits.MaxTauExponents} exponents; got '{e}'.");
                taus = Enumerable.Range(from, to - from + 1).ToArray();
            }
            else if (toy) taus = new[] { -3, -2, -1 };
            using var progress = ProgressPrinter.ForStandardError(parse.InvocationConfiguration.Error);
            var r = parse.GetValue(workload) switch
            {
                "figure5" => SweepBenchmark.Figure5(parse.GetValue(prompts) ?? 200, parse.GetValue(perForward), parse.GetValue(threads), parse.GetValue(rounds), progress),
                "curve" => SweepBenchmark.Curve(m, parse.GetValue(prompts) ?? (toy ? 8 : 200), 12, parse.GetValue(perForward), parse.GetValue(threads), parse.GetValue(rounds), progress),
                _ => SweepBenchmark.Acdc(m, parse.GetValue(prompts) ?? (toy ? 8 : 200), taus, parse.GetValue(perForward), parse.GetValue(threads), parse.GetValue(rounds), progress),
            };
            progress.Dispose();
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                CommonOptions.WriteJson(output, r);
                return 0;
            }
            string Line(SweepTiming t) => $"{t.Seconds,8:F1} s  {t.CircuitsPerSecond,8:F1} {r.Circuits}/s{(t.ForwardPasses is int f ? $"  ({t.Circuits} in {f} forward passes)" : "")}";
            output.WriteLine($"{r.Workload} on {r.Model} ({r.Task}), {r.Prompts} prompts{(r.Thresholds > 0 ? $", {r.Thresholds} thresholds" : "")}, {r.Threads} thread(s), median of {r.Rounds} alternating rounds:");
            output.WriteLine($"  one circuit per forward: {Line(r.OneCircuit)}");
            output.WriteLine($"  stacked ({(r.Stacked.CircuitsPerForward is int n ? n.ToString(System.Globalization.CultureInfo.InvariantCulture) : "memory-based")}): {Line(r.Stacked)}");
            output.WriteLine($"  speed-up x{r.Speedup:F2}; same result: {(r.SameResult ? "yes" : "NO")}");
            return r.SameResult ? 0 : 1;
        });
        return cmd;
    }

    static Command BuildFigure()
    {
        var figure = new Argument<string>("figure") { Description = $"The paper's figure: {string.Join(", ", FigureBenchmark.Names)}." };
        var model = new Option<string?>("--model", "-m") { Description = "The model (default: the paper's, from the hub cache; a stand-in from `workbook models random` works)." };
        var device = CommonOptions.Device();
        var dtype = CommonOptions.DType();
        var tf32 = CommonOptions.AllowTf32();
        var prompts = TaskInputs.Prompts();
        var batchSize = TaskInputs.BatchSize();
        var parts = new Option<int?>("--parts-per-order") { Description = "IOI: only the first N templates of each name order (a part of the figure; default: all 15)." };
        var noReuse = new Option<bool>("--no-reuse") { Description = "Compute clean runs, patch-source activations and means per methodology (the reference that work sharing is measured against)." };
        var json = CommonOptions.Json();
        var cmd = new Command("figure", "Time the evaluations behind one of the paper's figures at the paper's prompt counts (3: IOI grid, 4: ABC dataset size, " +
                                        "9: Docstring, 10: Sports Players) on the paper's model or its random stand-in; wall time, and the process's peak memory.")
        {
            figure, model, device, dtype, tf32, prompts, batchSize, parts, noReuse, json,
        };
        cmd.SetAction(parse =>
        {
            Devices.AllowTf32 = parse.GetValue(tf32);
            var parameters = new Experiments.FigureParameters(parse.GetValue(model), parse.GetValue(device)!, parse.GetValue(dtype)!, parse.GetValue(prompts), parse.GetValue(batchSize));
            using var progress = ProgressPrinter.ForStandardError(parse.InvocationConfiguration.Error);
            var result = FigureBenchmark.Run(parse.GetValue(figure)!, parameters, !parse.GetValue(noReuse), progress, parse.GetValue(parts));
            progress.Dispose();
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json)) CommonOptions.WriteJson(output, result);
            else output.WriteLine($"figure {result.Figure} on {result.Model}{(result.RandomWeights ? " (random weights)" : "")}, {result.DeviceName}, {result.DType}: " +
                                  $"{result.Prompts} prompts in {result.Parts} part(s), {result.Methodologies} methodologies{(result.ReuseWork ? "" : ", no work sharing")}; " +
                                  $"load {result.LoadSeconds:F1} s, compute {result.ComputeSeconds:F1} s, peak RSS {ConsoleProgress.Bytes(result.PeakRssBytes)}");
            return 0;
        });
        return cmd;
    }

    static Command BuildPrecision()
    {
        var model = new Option<string>("--model", "-m") { Description = "The model (an embedded one, a hub alias, a folder).", DefaultValueFactory = _ => "toy-ioi" };
        var task = new Option<string>("--task", "-t") { Description = "The task.", DefaultValueFactory = _ => "ioi" };
        var circuit = TaskInputs.Circuit();
        var dtype = new Option<string>("--dtype") { Description = "The half-precision type to compare with float32: bfloat16 or float16.", DefaultValueFactory = _ => "bfloat16" };
        var device = CommonOptions.Device();
        var prompts = TaskInputs.Prompts();
        var parts = new Option<int?>("--parts-per-order") { Description = "IOI: only the first N templates of each name order." };
        var batchSize = TaskInputs.BatchSize();
        var json = CommonOptions.Json();
        var cmd = new Command("precision", "The accuracy cost of bfloat16/float16 against float32 on the same prompts: the largest logit difference at the read " +
                                           "positions and each methodology's median faithfulness (Figure 3's grid), with the time of each.")
        {
            model, task, circuit, dtype, device, prompts, parts, batchSize, json,
        };
        cmd.SetAction(parse =>
        {
            var half = CommonOptions.ParseDType(parse.GetValue(dtype)!);
            string? circuitName = parse.GetValue(circuit) ?? (parse.GetValue(model) == "toy-ioi" ? "toy-ioi" : null);
            using var progress = ProgressPrinter.ForStandardError(parse.InvocationConfiguration.Error);
            var r = PrecisionComparison.Compare(parse.GetValue(model)!, parse.GetValue(task)!, circuitName, half, parse.GetValue(device)!, parse.GetValue(prompts),
                parse.GetValue(parts), parse.GetValue(batchSize), progress);
            progress.Dispose();
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                CommonOptions.WriteJson(output, r);
                return 0;
            }
            output.WriteLine($"{r.Model}{(r.RandomWeights ? " (random weights)" : "")}, task {r.Task}, circuit {r.Circuit}, {r.Prompts} prompts on {r.Device}: {r.DType} vs float32");
            output.WriteLine($"  largest |logit difference| at the read positions: {r.MaxAbsLogitDifference:G3} (logits up to {r.MaxAbsLogit:G3})");
            output.WriteLine($"  time: float32 {r.Float32Seconds:F1} s, {r.DType} {r.HalfSeconds:F1} s");
            output.WriteLine($"  {"methodology",-46} {"metric",-22} {"float32",9} {r.DType,9} {"shift",8}");
            foreach (var m in r.Medians)
                output.WriteLine($"  {m.Methodology,-46} {m.Metric,-22} {m.Float32,9:F2} {m.Half,9:F2} {m.Difference,8:F2}");
            return 0;
        });
        return cmd;
    }

    static Command BuildPatching()
    {
        var device = CommonOptions.Device();
        var tf32 = CommonOptions.AllowTf32();
        var json = CommonOptions.Json();
        var batch = new Option<int>("--batch") { Description = "Prompts per batch.", DefaultValueFactory = _ => 50 }.Within(1, OptionLimits.MaxBatch);
        var seq = new Option<int>("--seq") { Description = "Tokens per prompt.", DefaultValueFactory = _ => 16 }.Within(1, 1024, "GPT-2's context");
        var repeat = new Option<int>("--repeat") { Description = "Timed runs of each forward (the median is reported).", DefaultValueFactory = _ => 10 }.Within(1, OptionLimits.MaxRepeat);
        var warmup = new Option<int>("--warmup") { Description = "Untimed runs before timing.", DefaultValueFactory = _ => 2 }.Within(0, OptionLimits.MaxRepeat);
        var circuit = new Option<string>("--circuit")
        {
            Description = "The kept 771-edge circuit: ioi (the IOI edge circuit, structured like real circuits) or random edges.",
            DefaultValueFactory = _ => "ioi",
        };
        circuit.AcceptOnlyFromAmong("ioi", "random");
        var cmd = new Command("patching",
            "Time a plain and a patched forward of a GPT-2-small-shaped model with random weights: all 32,491 edges maskable, " +
            "the complement of a 771-edge circuit (IOI's, or random edges) resampled (the workload of tests/Workbook.Benchmarks).")
        {
            batch, seq, repeat, warmup, circuit, device, tf32, json,
        };
        cmd.SetAction(parse =>
        {
            Devices.AllowTf32 = parse.GetValue(tf32);
            int b = parse.GetValue(batch), s = parse.GetValue(seq);
            if (Devices.Parse(parse.GetValue(device)!).type == TorchSharp.DeviceType.CPU)
                OptionLimits.EnsureActivationsFit(KnownConfigs.Gpt2SmallShape, b, s, everyLayerKept: false, "--batch/--seq", patched: true);
            bool asJson = parse.GetValue(json);
            var output = parse.InvocationConfiguration.Output;
            var log = asJson ? parse.InvocationConfiguration.Error : output;
            var kind = parse.GetValue(circuit) == "random" ? PatchingWorkload.CircuitKind.Random : PatchingWorkload.CircuitKind.Ioi;
            var result = PatchingBenchmark.Run(parse.GetValue(device)!, b, s, parse.GetValue(repeat), parse.GetValue(warmup), line => log.WriteLine(line), circuit: kind);
            log.WriteLine($"{result.DeviceName}: {result.Circuit} circuit, batch {result.Batch} x {result.Seq}, plain {result.Plain.MedianMs:F2} ms, patched {result.Patched.MedianMs:F2} ms " +
                          $"(x{result.PatchedOverPlain:F2}), token-specific {result.PatchedTokenSpecific.MedianMs:F2} ms (x{result.TokenSpecificOverPlain:F2})");
            if (asJson) CommonOptions.WriteJson(output, result);
            return 0;
        });
        return cmd;
    }
}
