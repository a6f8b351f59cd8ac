using System.CommandLine;
using Workbook.Diagnostics;
using Workbook.Model;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook bench patching</c>: plain vs patched forward times of the patching benchmark's workload on a device.</summary>
public static class BenchCommand
{
    public static Command Build()
    {
        var bench = new Command("bench", "Performance measurements on a device (wall clock with device synchronisation).");
        bench.Subcommands.Add(BuildPatching());
        return bench;
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
                OptionLimits.EnsureActivationsFit(PatchingWorkload.Gpt2SmallShape, b, s, everyLayerKept: false, "--batch/--seq", patched: true);
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
