using System.CommandLine;
using Workbook.Checkpoints;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook hooks</c>: every hook point with its activation shape.</summary>
public static class HooksCommand
{
    public sealed record Hook(string Name, long[] Shape);
    public sealed record Output(IReadOnlyList<Hook> Hooks);

    public static Command Build()
    {
        var model = CommonOptions.Model();
        var device = CommonOptions.Device();
        var json = CommonOptions.Json();
        var offline = CommonOptions.Offline();
        var batch = new Option<int>("--batch") { Description = "Batch size of the example input.", DefaultValueFactory = _ => 1 }.Within(1, OptionLimits.MaxBatch);
        var seq = new Option<int>("--seq") { Description = "Sequence length of the example input (at most the model's context).", DefaultValueFactory = _ => 4 }.Within(1, 1 << 20);
        var cmd = new Command("hooks", "List every hook point of a model with its activation shape for an example input.")
        {
            model, batch, seq, device, offline, json,
        };
        cmd.SetAction(parse =>
        {
            using var m = ModelLoader.Load(parse.GetValue(model)!, CommonOptions.LoadOptions(parse, device, offline: offline));
            int b = parse.GetValue(batch), s = parse.GetValue(seq);
            OptionLimits.Ensure(s <= m.Config.NCtx, $"--seq {s} is longer than the model's context of {m.Config.NCtx} tokens.");
            // The listing runs one prompt (shapes are batch-first), every hook's activation alive until the pass ends.
            if (m.Device.type == TorchSharp.DeviceType.CPU) OptionLimits.EnsureActivationsFit(m.Config, 1, s, everyLayerKept: true, "--seq");
            var hooks = m.ListHooks(parse.GetValue(batch), parse.GetValue(seq)).Select(h => new Hook(h.Name, h.Shape)).ToList();
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json)) CommonOptions.WriteJson(output, new Output(hooks));
            else foreach (var h in hooks) output.WriteLine($"{h.Name,-40} [{string.Join(", ", h.Shape)}]");
            return 0;
        });
        return cmd;
    }
}
