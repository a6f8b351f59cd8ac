using System.CommandLine;
using System.Globalization;
using Workbook.Checkpoints;
using Workbook.Model;
using Workbook.Tokenization;
using static TorchSharp.torch;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook run</c>: the top next-token predictions at the last position.</summary>
public static class RunCommand
{
    /// <summary>One prediction; <see cref="Text"/> is the token's text when the model has a tokenizer (with --prompt).</summary>
    public sealed record Prediction(long Token, double Logit, double Prob, string? Text = null);
    public sealed record Output(IReadOnlyList<Prediction> Top);

    public static Command Build()
    {
        var model = CommonOptions.Model();
        var device = CommonOptions.Device();
        var tf32 = CommonOptions.AllowTf32();
        var json = CommonOptions.Json();
        var dtype = CommonOptions.DType();
        var offline = CommonOptions.Offline();
        var tokens = new Option<string>("--tokens") { Description = "Comma-separated token ids, e.g. 1,2,3." };
        var prompt = new Option<string>("--prompt") { Description = "Text, tokenized with the model's tokenizer (instead of --tokens)." };
        var bos = new Option<bool>("--bos") { Description = "Prepend the tokenizer's BOS token to --prompt (a tokenizer never adds one by itself)." };
        var top = new Option<int>("--top") { Description = "How many predictions to show.", DefaultValueFactory = _ => 10 }.Within(1, OptionLimits.MaxTop);
        var cmd = new Command("run", "Run a model on token ids or a prompt and print the top next-token predictions at the last position.")
        {
            model, tokens, prompt, bos, top, device, dtype, offline, tf32, json,
        };
        cmd.SetAction(parse =>
        {
            Devices.AllowTf32 = parse.GetValue(tf32);
            string? tokenText = parse.GetValue(tokens), promptText = parse.GetValue(prompt);
            if ((tokenText == null) == (promptText == null)) throw new ArgumentException("Give exactly one of --tokens or --prompt.");
            if (parse.GetValue(bos) && promptText == null) throw new ArgumentException("--bos applies to --prompt only.");
            int k = parse.GetValue(top);
            if (k < 1) throw new ArgumentException("--top must be at least 1.");
            var options = CommonOptions.LoadOptions(parse, device, dtype, offline);
            CommonOptions.NoteRandomWeights(parse.GetValue(model)!, options, parse.InvocationConfiguration.Error);
            Output result;
            if (promptText != null)
            {
                using var loaded = ModelLoader.LoadWithTokenizer(parse.GetValue(model)!, options);
                var tokenizer = loaded.RequireTokenizer();
                // The model's context bounds the prompt: a longer one is refused before it is encoded (where the tokenizer can tell).
                var ids = tokenizer.EncodePrompt(promptText, parse.GetValue(bos), loaded.Model.Config.NCtx).Select(i => (long)i).ToArray();
                if (ids.Length == 0) throw new ArgumentException("--prompt is empty after tokenization.");
                result = Predict(loaded.Model, ids, k, tokenizer, loaded.Source.Embedded?.OutputLabels);
            }
            else
            {
                using var m = ModelLoader.Load(parse.GetValue(model)!, options);
                result = Predict(m, ParseTokens(tokenText!), k);
            }
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json)) CommonOptions.WriteJson(output, result);
            else
            {
                output.WriteLine($"{"rank",4}  {"token",8}  {"logit",12}  {"prob",10}{(promptText != null ? "  text" : "")}");
                int rank = 1;
                foreach (var p in result.Top)
                    output.WriteLine($"{rank++,4}  {p.Token,8}  {p.Logit,12:F4}  {p.Prob,10:F6}{(p.Text != null ? $"  {System.Text.Json.JsonSerializer.Serialize(p.Text)}" : "")}");
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

    /// <summary>The top <paramref name="k"/> outputs at the last position, named by <paramref name="outputLabels"/> (Tracr models) or the tokenizer.</summary>
    public static Output Predict(HookedTransformer model, long[] ids, int k, ITokenizer? tokenizer = null, IReadOnlyList<string>? outputLabels = null)
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
            string? text = outputLabels != null ? outputLabels[(int)id]
                : tokenizer != null && id < tokenizer.VocabSize ? tokenizer.Decode(new[] { (int)id }) : null;
            top.Add(new Prediction(id, values[i].item<double>(), probs[id].item<double>(), text));
        }
        return new Output(top);
    }
}
