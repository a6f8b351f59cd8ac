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
        var batch = new Option<int>("--batch") { Description = "Batch size of the example input.", DefaultValueFactory = _ => 1 };
        var seq = new Option<int>("--seq") { Description = "Sequence length of the example input.", DefaultValueFactory = _ => 4 };
        var cmd = new Command("hooks", "List every hook point of a model with its activation shape for an example input.")
        {
            model, batch, seq, device, offline, json,
        };
        cmd.SetAction(parse =>
        {
            using var m = ModelLoader.Load(parse.GetValue(model)!, CommonOptions.LoadOptions(parse, device, offline: offline));
            var hooks = m.ListHooks(parse.GetValue(batch), parse.GetValue(seq)).Select(h => new Hook(h.Name, h.Shape)).ToList();
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json)) CommonOptions.WriteJson(output, new Output(hooks));
            else foreach (var h in hooks) output.WriteLine($"{h.Name,-40} [{string.Join(", ", h.Shape)}]");
            return 0;
        });
        return cmd;
    }
}
