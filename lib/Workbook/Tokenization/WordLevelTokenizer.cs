using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Workbook.Tokenization;

/// <summary>How a <see cref="WordLevelTokenizer"/> cuts text into the pieces it looks up (HuggingFace pre-tokenizers).</summary>
public enum WordLevelPreTokenizer
{
    /// <summary>Runs of word characters and runs of punctuation (<c>\w+|[^\w\s]+</c>); spaces and newlines are dropped.</summary>
    Whitespace,
    /// <summary>
    /// GPT-2's pattern (words keep their leading space, runs of spaces and newlines are pieces of their own), each piece
    /// spelled in GPT-2's byte-level alphabet (" data" is "Ġdata"), without an added prefix space. Text keeps the
    /// layout GPT-2-style tokenizers give it, so task positions stay those of the paper's models.
    /// </summary>
    ByteLevel,
}

/// <summary>
/// A word-level tokenizer stored as a HuggingFace <c>tokenizer.json</c> (model "WordLevel", pre-tokenizer
/// "Whitespace" or "ByteLevel"), so that the HuggingFace <c>tokenizers</c> library reads the same file. After
/// special tokens such as the BOS have been cut out, text is split by the pre-tokenizer
/// (<see cref="WordLevelPreTokenizer"/>); each piece must be in the vocabulary. Unlike HuggingFace, an unknown word
/// is an error naming the word, not a silent unknown token. Never adds a BOS by itself.
/// </summary>
public sealed partial class WordLevelTokenizer : ITokenizer
{
    readonly string[] _vocabulary;
    readonly Dictionary<string, int> _ids;
    readonly string[] _specialTokens;
    readonly int? _bos;

    /// <param name="name">Name for messages.</param>
    /// <param name="vocabulary">Tokens in id order.</param>
    /// <param name="unknownToken">The token HuggingFace maps unknown words to (must be in the vocabulary).</param>
    /// <param name="specialTokens">Tokens matched verbatim in text before splitting (e.g. the BOS).</param>
    /// <param name="bosToken">The BOS token (one of the special tokens), or null.</param>
    /// <param name="preTokenizer">How text is cut into pieces; with <see cref="WordLevelPreTokenizer.ByteLevel"/> the vocabulary is in GPT-2's byte-level alphabet.</param>
    public WordLevelTokenizer(string name, IReadOnlyList<string> vocabulary, string unknownToken, IReadOnlyList<string> specialTokens, string? bosToken,
        WordLevelPreTokenizer preTokenizer = WordLevelPreTokenizer.Whitespace)
    {
        Name = name;
        PreTokenizer = preTokenizer;
        _vocabulary = vocabulary.ToArray();
        _ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < _vocabulary.Length; i++)
            if (!_ids.TryAdd(_vocabulary[i], i)) throw new ArgumentException($"Tokenizer '{name}': token '{_vocabulary[i]}' appears twice in the vocabulary.");
        if (!_ids.ContainsKey(unknownToken)) throw new ArgumentException($"Tokenizer '{name}': unknown token '{unknownToken}' is not in the vocabulary.");
        UnknownToken = unknownToken;
        _specialTokens = specialTokens.OrderByDescending(s => s.Length).ToArray();
        foreach (var s in _specialTokens)
            if (!_ids.ContainsKey(s)) throw new ArgumentException($"Tokenizer '{name}': special token '{s}' is not in the vocabulary.");
        if (bosToken != null)
        {
            if (!_specialTokens.Contains(bosToken)) throw new ArgumentException($"Tokenizer '{name}': BOS token '{bosToken}' is not a special token.");
            _bos = _ids[bosToken];
        }
    }

    public string Name { get; }
    public WordLevelPreTokenizer PreTokenizer { get; }
    public int VocabSize => _vocabulary.Length;
    public (string Text, int Id)? Bos => _bos is int b ? (_vocabulary[b], b) : null;
    public string UnknownToken { get; }
    public IReadOnlyList<string> Vocabulary => _vocabulary;
    public IReadOnlyList<string> SpecialTokens => _specialTokens;

    /// <summary>The id of one token, or an error naming it.</summary>
    public int Id(string token) => _ids.TryGetValue(token, out int id)
        ? id
        : throw new ArgumentException($"'{token}' is not in the vocabulary of tokenizer '{Name}'.");

    public bool Contains(string token) => _ids.ContainsKey(token);

    [GeneratedRegex(@"\w+|[^\w\s]+")]
    private static partial Regex WordsAndPunctuation();

    /// <summary>
    /// The pieces <paramref name="text"/> splits into: special tokens verbatim, and between them the pre-tokenizer's
    /// pieces (byte-level spelled for <see cref="WordLevelPreTokenizer.ByteLevel"/>).
    /// </summary>
    public IEnumerable<string> PreTokenize(string text)
    {
        int start = 0;
        while (start < text.Length)
        {
            int next = -1;
            string? special = null;
            foreach (var s in _specialTokens)
            {
                int i = text.IndexOf(s, start, StringComparison.Ordinal);
                if (i >= 0 && (next < 0 || i < next)) (next, special) = (i, s);
            }
            string chunk = next < 0 ? text[start..] : text[start..next];
            if (PreTokenizer == WordLevelPreTokenizer.ByteLevel)
                foreach (Match m in ByteLevel.Gpt2Pattern().Matches(chunk)) yield return ByteLevel.Encode(m.Value);
            else
                foreach (Match m in WordsAndPunctuation().Matches(chunk)) yield return m.Value;
            if (next < 0) yield break;
            yield return special!;
            start = next + special!.Length;
        }
    }

    public IReadOnlyList<int> Encode(string text)
    {
        var ids = new List<int>();
        foreach (var piece in PreTokenize(text))
        {
            if (!_ids.TryGetValue(piece, out int id))
                throw new ArgumentException($"'{piece}' is not in the vocabulary of tokenizer '{Name}' ({_vocabulary.Length} words; text: \"{text}\").");
            ids.Add(id);
        }
        return ids;
    }

    /// <summary>
    /// Whitespace: tokens joined by spaces, except that punctuation attaches to the word before it ("Mary, John.").
    /// ByteLevel: the bytes the tokens spell, joined as they are (the text they came from).
    /// </summary>
    public string Decode(IEnumerable<int> ids)
    {
        if (PreTokenizer == WordLevelPreTokenizer.ByteLevel) return DecodeBytes(ids);
        var sb = new StringBuilder();
        foreach (int id in ids)
        {
            string token = TokenAt(id);
            bool punctuation = token.All(c => !char.IsLetterOrDigit(c) && c != '_' && !char.IsWhiteSpace(c)) && !_specialTokens.Contains(token);
            if (sb.Length > 0 && !punctuation) sb.Append(' ');
            sb.Append(token);
        }
        return sb.ToString();
    }

    string TokenAt(int id) => id >= 0 && id < _vocabulary.Length
        ? _vocabulary[id]
        : throw new ArgumentOutOfRangeException(nameof(id), $"Token id {id} is outside tokenizer '{Name}' (0..{_vocabulary.Length - 1}).");

    string DecodeBytes(IEnumerable<int> ids)
    {
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            string token = TokenAt(id);
            if (_specialTokens.Contains(token)) bytes.AddRange(Encoding.UTF8.GetBytes(token));
            else ByteLevel.AppendBytes(token, bytes);
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    // ---------------------------------------------------------------------------------------------
    // HuggingFace tokenizer.json

    JsonObject PreTokenizerJson() => PreTokenizer == WordLevelPreTokenizer.ByteLevel
        ? new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true }
        : new JsonObject { ["type"] = "Whitespace" };

    /// <summary>The HuggingFace <c>tokenizer.json</c> text of this tokenizer.</summary>
    public string ToJson()
    {
        var vocab = new JsonObject();
        for (int i = 0; i < _vocabulary.Length; i++) vocab[_vocabulary[i]] = i;
        var added = new JsonArray();
        foreach (var s in _specialTokens.OrderBy(s => _ids[s]))
            added.Add(new JsonObject
            {
                ["id"] = _ids[s], ["content"] = s, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = true,
            });
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = PreTokenizerJson(),
            ["post_processor"] = null,
            ["decoder"] = PreTokenizer == WordLevelPreTokenizer.ByteLevel
                ? new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true }
                : null,
            ["model"] = new JsonObject { ["type"] = "WordLevel", ["vocab"] = vocab, ["unk_token"] = UnknownToken },
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    /// <summary>Whether the <c>tokenizer.json</c> at <paramref name="path"/> has a WordLevel model (false when unreadable).</summary>
    public static bool IsWordLevel(string path)
    {
        try
        {
            return Util.JsonInput.ReadObjectNode(path)["model"]?["type"]?.GetValue<string>() == "WordLevel";
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or IOException)
        {
            return false;
        }
    }

    /// <summary>
    /// Reads a HuggingFace <c>tokenizer.json</c> with a WordLevel model. The BOS is <paramref name="bosToken"/>,
    /// or else the <c>bos_token</c> of a <c>tokenizer_config.json</c> next to it, or none. <paramref name="name"/> names it
    /// in messages (default: the path).
    /// </summary>
    public static WordLevelTokenizer Load(string path, string? bosToken = null, string? name = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Tokenizer file '{path}' does not exist.", path);
        bosToken ??= BosFromConfig(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "tokenizer_config.json"));
        return FromJson(Util.JsonInput.ReadText(path), path, bosToken, name);
    }

    /// <summary>
    /// Reads <c>tokenizer.json</c> text with a WordLevel model; <paramref name="path"/> names it in messages. Every
    /// problem is a <see cref="FormatException"/> naming the file.
    /// </summary>
    public static WordLevelTokenizer FromJson(string json, string path, string? bosToken = null, string? name = null)
    {
        try
        {
            return Parse(json, path, bosToken, name);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or JsonException)
        {
            // JsonNode reports a value of the wrong type (a number where a string belongs) or a key listed twice this way.
            throw new FormatException($"{path}: malformed tokenizer file: {e.Message}", e);
        }
    }

    /// <summary>The <c>bos_token</c> of a <c>tokenizer_config.json</c> (a string or an object with "content"), or null.</summary>
    static string? BosFromConfig(string configPath)
    {
        if (!File.Exists(configPath)) return null;
        var config = Util.JsonInput.ReadObjectNode(configPath, maxBytes: Util.JsonInput.MaxSmallFileBytes);
        try
        {
            var bos = config["bos_token"];
            return bos is JsonValue ? bos.GetValue<string>() : bos is JsonObject ? bos["content"]?.GetValue<string>() : null;
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            throw new FormatException($"{configPath}: malformed tokenizer config: {e.Message}", e);
        }
    }

    static WordLevelTokenizer Parse(string json, string path, string? bosToken, string? name)
    {
        var root = Util.JsonInput.ParseObjectNode(json, path);
        var model = root["model"] as JsonObject ?? throw new FormatException($"{path}: no \"model\" object.");
        string? type = model["type"]?.GetValue<string>();
        if (type != "WordLevel") throw new FormatException($"{path}: model type is '{type ?? "(none)"}'; this reader handles WordLevel tokenizers only.");
        var preTokenizer = ReadPreTokenizer(root["pre_tokenizer"], path);
        if (root["normalizer"] is not null) throw new FormatException($"{path}: normalizers are not supported.");
        var vocabObject = model["vocab"] as JsonObject ?? throw new FormatException($"{path}: model has no \"vocab\" object.");
        var byId = new SortedDictionary<int, string>();
        foreach (var (token, value) in vocabObject)
        {
            int id = value?.GetValue<int>() ?? throw new FormatException($"{path}: token '{token}' has no id.");
            if (!byId.TryAdd(id, token)) throw new FormatException($"{path}: id {id} is used by '{byId[id]}' and '{token}'.");
        }
        if (byId.Count == 0 || byId.Keys.First() != 0 || byId.Keys.Last() != byId.Count - 1)
            throw new FormatException($"{path}: vocabulary ids must be 0..{byId.Count - 1} without gaps.");
        string unk = model["unk_token"]?.GetValue<string>() ?? throw new FormatException($"{path}: model has no \"unk_token\".");
        var specials = (root["added_tokens"] as JsonArray ?? new JsonArray())
            .Select(t => t?["content"]?.GetValue<string>() ?? throw new FormatException($"{path}: an added token has no content.")).ToList();
        try
        {
            return new WordLevelTokenizer(name ?? path, byId.Values.ToList(), unk, specials, bosToken, preTokenizer);
        }
        catch (ArgumentException e)
        {
            throw new FormatException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>Whitespace, or ByteLevel exactly as this reader applies it (GPT-2's pattern, no added prefix space).</summary>
    static WordLevelPreTokenizer ReadPreTokenizer(JsonNode? node, string path)
    {
        string? type = node?["type"]?.GetValue<string>();
        switch (type)
        {
            case "Whitespace":
                return WordLevelPreTokenizer.Whitespace;
            case "ByteLevel":
                // HuggingFace's defaults are add_prefix_space = true and use_regex = true.
                if (node!["add_prefix_space"]?.GetValue<bool>() ?? true)
                    throw new FormatException($"{path}: ByteLevel pre-tokenizer with add_prefix_space true is not supported; set it to false.");
                if (!(node["use_regex"]?.GetValue<bool>() ?? true))
                    throw new FormatException($"{path}: ByteLevel pre-tokenizer with use_regex false is not supported.");
                return WordLevelPreTokenizer.ByteLevel;
            default:
                throw new FormatException($"{path}: pre-tokenizer is '{type ?? "(none)"}'; only 'Whitespace' and 'ByteLevel' are supported.");
        }
    }
}
