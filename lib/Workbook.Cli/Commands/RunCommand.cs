using System.CommandLine;
using System.Globalization;
using Workbook.Checkpoints;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook run</c>: the top next-token predictions at the last position.</summary>
public static class RunCommand
{
    public sealed record Prediction(long Token, double Logit, double Prob);
    public sealed record Output(IReadOnlyList<Prediction> Top);

    public static Command Build()
    {
        var model = CommonOptions.Model();
        var device = CommonOptions.Device();
        var tf32 = CommonOptions.AllowTf32();
        var json = CommonOptions.Json();
        var tokens = new Option<string>("--tokens") { Description = "Comma-separated token ids, e.g. 1,2,3.", Required = true };
        var top = new Option<int>("--top") { Description = "How many predictions to show.", DefaultValueFactory = _ => 10 };
        var cmd = new Command("run", "Run a model on token ids and print the top next-token predictions at the last position.")
        {
            model, tokens, top, device, tf32, json,
        };
        cmd.SetAction(parse =>
        {
            Devices.AllowTf32 = parse.GetValue(tf32);
            var ids = ParseTokens(parse.GetValue(tokens)!);
            int k = parse.GetValue(top);
            if (k < 1) throw new ArgumentException("--top must be at least 1.");
            using var m = ModelLoader.Load(parse.GetValue(model)!, new LoadOptions { Device = parse.GetValue(device)! });
            var result = Predict(m, ids, k);
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json)) CommonOptions.WriteJson(output, result);
            else
            {
                output.WriteLine($"{"rank",4}  {"token",8}  {"logit",12}  {"prob",10}");
                int rank = 1;
                foreach (var p in result.Top)
                    output.WriteLine($"{rank++,4}  {p.Token,8}  {p.Logit,12:F4}  {p.Prob,10:F6}");
            }
            return 0;
        });
        return cmd;
    }

    public static long[] ParseTokens(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException("--tokens must list at least one token id.");
        return parts.Select(p => long.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v)
            ? v
            : throw new ArgumentException($"--tokens: '{p}' is not an integer token id.")).ToArray();
    }

    public static Output Predict(HookedTransformer model, long[] ids, int k)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var logits = model.Forward(tensor(ids, device: model.Device).unsqueeze(0))[0, -1].to(ScalarType.Float64).cpu();
        var probs = logits.softmax(-1);
        var (values, indices) = logits.topk(Math.Min(k, (int)logits.shape[0]));
        var top = new List<Prediction>();
        for (int i = 0; i < values.shape[0]; i++)
        {
            long id = indices[i].item<long>();
            top.Add(new Prediction(id, values[i].item<double>(), probs[id].item<double>()));
        }
        return new Output(top);
    }
}
