using System.Text.Json;
using Workbook.Util;

namespace Workbook.Tasks;

/// <summary>
/// Reads and writes datasets in AutoCircuit's JSON format (spec D.1):
/// <c>{"seq_labels": [...], "word_idxs": {...}, "prompts": [{"clean", "corrupt", "answers", "wrong_answers"}]}</c>.
/// Prompts are strings or token-id lists; answers are strings or per-position lists of numbers. Writing reproduces
/// the layout of the original files (Python <c>json.dumps(indent=2)</c> plus a final newline), so a regenerated
/// dataset can be compared byte for byte.
/// </summary>
public static class AutoCircuitJson
{
    public static PromptDataset ReadFile(string path, string? name = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Dataset file '{path}' does not exist.", path);
        // Read through the shared cap: a multi-gigabyte or endless file (a FIFO, /dev/zero) is refused, not read whole.
        return Read(JsonInput.ReadText(path), name ?? Path.GetFileNameWithoutExtension(path), path);
    }

    public static PromptDataset Read(string json, string name, string source = "dataset")
    {
        using (var doc = JsonInput.Parse(json, source, maxDepth: 16))
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new FormatException($"{source}: expected a JSON object with a \"prompts\" array.");
            if (!root.TryGetProperty("prompts", out var prompts) || prompts.ValueKind != JsonValueKind.Array)
                throw new FormatException($"{source}: missing the \"prompts\" array.");
            if (prompts.GetArrayLength() == 0) throw new FormatException($"{source}: the \"prompts\" array is empty.");

            IReadOnlyList<string>? seqLabels = null;
            if (root.TryGetProperty("seq_labels", out var labels) && labels.ValueKind != JsonValueKind.Null)
            {
                if (labels.ValueKind != JsonValueKind.Array || labels.EnumerateArray().Any(l => l.ValueKind != JsonValueKind.String))
                    throw new FormatException($"{source}: \"seq_labels\" must be an array of strings.");
                seqLabels = labels.EnumerateArray().Select(l => l.GetString()!).ToArray();
            }

            WordPositions? wordIdxs = null;
            if (root.TryGetProperty("word_idxs", out var idxs) && idxs.ValueKind != JsonValueKind.Null)
            {
                if (idxs.ValueKind != JsonValueKind.Object) throw new FormatException($"{source}: \"word_idxs\" must be an object of label: index.");
                var entries = new List<KeyValuePair<string, int>>();
                foreach (var p in idxs.EnumerateObject())
                {
                    if (entries.Any(e => e.Key == p.Name)) throw new FormatException($"{source}: word_idxs lists \"{p.Name}\" twice.");
                    if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int v) || v < 0)
                        throw new FormatException($"{source}: word_idxs[\"{p.Name}\"] must be a non-negative integer, got {p.Value.GetRawText()}.");
                    entries.Add(KeyValuePair.Create(p.Name, v));
                }
                wordIdxs = new WordPositions(entries);
            }

            var result = new List<TaskPrompt>();
            int i = 0;
            foreach (var p in prompts.EnumerateArray())
            {
                string where = $"{source}: prompt {i++}";
                if (p.ValueKind != JsonValueKind.Object) throw new FormatException($"{where} must be an object.");
                var clean = ReadInput(p, "clean", where);
                var corrupt = ReadInput(p, "corrupt", where);
                if (clean.IsText != corrupt.IsText) throw new FormatException($"{where}: \"clean\" and \"corrupt\" must both be strings or both token lists.");
                result.Add(new TaskPrompt(clean, corrupt, ReadAnswers(p, "answers", where), ReadAnswers(p, "wrong_answers", where)));
            }
            bool text = result[0].Clean.IsText;
            int mismatch = result.FindIndex(r => r.Clean.IsText != text);
            if (mismatch >= 0) throw new FormatException($"{source}: prompt {mismatch} is {(text ? "a token list" : "text")} but prompt 0 is {(text ? "text" : "a token list")}.");
            return new PromptDataset { Name = name, SeqLabels = seqLabels, WordIdxs = wordIdxs, Prompts = result };
        }
    }

    static PromptInput ReadInput(JsonElement prompt, string field, string where)
    {
        if (!prompt.TryGetProperty(field, out var v)) throw new FormatException($"{where}: missing \"{field}\".");
        switch (v.ValueKind)
        {
            case JsonValueKind.String: return PromptInput.FromText(v.GetString()!);
            case JsonValueKind.Array:
                var ids = new List<int>();
                foreach (var t in v.EnumerateArray())
                {
                    if (t.ValueKind != JsonValueKind.Number || !t.TryGetInt32(out int id) || id < 0)
                        throw new FormatException($"{where}: \"{field}\" must hold non-negative integer token ids, got {t.GetRawText()}.");
                    ids.Add(id);
                }
                if (ids.Count == 0) throw new FormatException($"{where}: \"{field}\" is empty.");
                return PromptInput.FromTokens(ids);
            default: throw new FormatException($"{where}: \"{field}\" must be a string or a list of token ids.");
        }
    }

    static AnswerList ReadAnswers(JsonElement prompt, string field, string where)
    {
        if (!prompt.TryGetProperty(field, out var v) || v.ValueKind != JsonValueKind.Array)
            throw new FormatException($"{where}: missing the \"{field}\" array.");
        var items = v.EnumerateArray().ToList();
        if (items.Count == 0) throw new FormatException($"{where}: \"{field}\" is empty.");
        if (items.All(a => a.ValueKind == JsonValueKind.String)) return AnswerList.FromTexts(items.Select(a => a.GetString()!));
        if (items.All(a => a.ValueKind == JsonValueKind.Array))
        {
            bool allIntegers = true;
            var values = new List<double[]>();
            foreach (var a in items)
            {
                var inner = new List<double>();
                foreach (var x in a.EnumerateArray())
                {
                    if (x.ValueKind != JsonValueKind.Number || !x.TryGetDouble(out double value) || !double.IsFinite(value))
                        throw new FormatException($"{where}: \"{field}\" must hold lists of finite numbers, got {x.GetRawText()}.");
                    inner.Add(value);
                    // A JSON integer literal has no '.', 'e' or 'E' (Python writes floats as 0.0, 0.5, 1e-05).
                    if (x.GetRawText().IndexOfAny(new[] { '.', 'e', 'E' }) >= 0) allIntegers = false;
                }
                values.Add(inner.ToArray());
            }
            if (allIntegers && values.SelectMany(v2 => v2).FirstOrDefault(x => x < 0 || x > int.MaxValue, 0) is var bad && (bad < 0 || bad > int.MaxValue))
                throw new FormatException($"{where}: \"{field}\" holds integers, i.e. token ids, but {bad:R} is not a valid token id.");
            return allIntegers
                ? AnswerList.FromTokenIds(values.Select(v2 => v2.Select(x => (int)x)))
                : AnswerList.FromValues(values);
        }
        throw new FormatException($"{where}: \"{field}\" must be a list of strings or a list of lists of numbers.");
    }

    /// <summary>The dataset as AutoCircuit JSON, laid out like the original files (indent 2, ASCII, final newline).</summary>
    public static string Write(PromptDataset dataset)
    {
        var root = new List<KeyValuePair<string, object?>>();
        if (dataset.SeqLabels is not null) root.Add(new("seq_labels", dataset.SeqLabels));
        if (dataset.WordIdxs is not null) root.Add(new("word_idxs", dataset.WordIdxs.Entries.Select(e => new KeyValuePair<string, object?>(e.Key, e.Value)).ToList()));
        root.Add(new("prompts", dataset.Prompts.Select(p => (object?)new List<KeyValuePair<string, object?>>
        {
            new("clean", InputValue(p.Clean)),
            new("corrupt", InputValue(p.Corrupt)),
            new("answers", AnswerValue(p.Answers)),
            new("wrong_answers", AnswerValue(p.WrongAnswers)),
        }).ToList()));
        return PythonJson.Dumps(root) + "\n";
    }

    /// <summary>Writes the dataset atomically (temporary file, then rename).</summary>
    public static void WriteFile(PromptDataset dataset, string path) => AtomicFile.WriteAllText(path, Write(dataset));

    static object InputValue(PromptInput input) => input.Text is not null ? input.Text : input.Tokens!.ToList();

    static object AnswerValue(AnswerList answers) => answers.Texts is not null
        ? answers.Texts.ToList()
        : answers.Values!.Select(v => (object)(answers.ValuesAreTokenIds ? v.Select(x => (object)(int)x).ToList() : v.Select(x => (object)x).ToList())).ToList();
}
