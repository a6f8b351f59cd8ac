using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Workbook.Tokenization;

/// <summary>
/// A BPE tokenizer read from a HuggingFace <c>tokenizer.json</c> (GPT-NeoX / Pythia, attn-only-4l's
/// gpt-neox-tokenizer-digits, GPT-2), in managed code with no native library. Implements what these files use:
/// added tokens (matched first, leftmost-longest, with <c>lstrip</c>/<c>rstrip</c>/<c>single_word</c>), normalizers
/// NFC/NFD/NFKC/NFKD/Lowercase/Replace/Prepend/Sequence, pre-tokenizers ByteLevel/Digits/Split/Whitespace/
/// WhitespaceSplit/Sequence, the BPE model (merges by rank; <c>ignore_merges</c>, <c>byte_fallback</c>, <c>unk_token</c>)
/// and the decoders of <see cref="TokenDecoder"/> (ByteLevel; Replace, ByteFallback, Fuse, Strip, Metaspace). Anything else is refused when the file is read, naming it. The post-processor is
/// ignored on purpose: a tokenizer never adds BOS or EOS by itself.
/// </summary>
public sealed class HuggingFaceTokenizer : ITokenizer
{
    sealed record AddedToken(int Id, string Content, bool SingleWord, bool LStrip, bool RStrip, bool Normalized, bool Special);

    /// <summary>Largest id accepted from a file (ids index an array: a hostile id must not allocate gigabytes).</summary>
    public const int MaxVocabulary = 1 << 24;

    readonly Dictionary<string, int> _vocab;
    readonly string[] _idToToken;
    readonly Dictionary<(string, string), int> _mergeRanks;
    readonly List<AddedToken> _added;
    readonly List<AddedToken> _addedRaw, _addedNormalized; // longest first, for leftmost-longest matching
    readonly Dictionary<int, AddedToken> _addedById;
    readonly Func<string, string> _normalize;
    readonly Func<List<string>, List<string>> _preTokenize;
    readonly TokenDecoder _decoder;
    readonly int? _unkId;
    readonly bool _ignoreMerges, _byteFallback;
    readonly Dictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    /// <summary>The longest string (in UTF-16 units) one BPE symbol can be: a vocabulary entry or a merge's result.</summary>
    readonly int _longestSymbol;
    readonly object _cacheLock = new();

    public string Name { get; }
    public int VocabSize => _idToToken.Length;
    public (string Text, int Id)? Bos { get; }

    HuggingFaceTokenizer(string name, JsonElement root, string? bosToken)
    {
        Name = name;
        string Where(string what) => $"{name}: {what}";
        var model = Required(root, "model", name);
        string type = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "BPE";
        if (type != "BPE") throw new TokenizerException(Where($"model type '{type}' is not supported (only BPE)."));
        foreach (var unsupported in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (model.TryGetProperty(unsupported, out var v) && v.ValueKind == JsonValueKind.String && v.GetString()!.Length > 0)
                throw new TokenizerException(Where($"BPE option '{unsupported}' is not supported."));
        _ignoreMerges = model.TryGetProperty("ignore_merges", out var im) && im.ValueKind == JsonValueKind.True;
        _byteFallback = model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True;

        _vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in Required(model, "vocab", name).EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0 || id >= MaxVocabulary)
                throw new TokenizerException(Where($"vocab entry '{p.Name}' must have an integer id in 0..{MaxVocabulary - 1}, got {p.Value.GetRawText()}."));
            _vocab[p.Name] = id;
        }

        _mergeRanks = new Dictionary<(string, string), int>();
        if (model.TryGetProperty("merges", out var merges) && merges.ValueKind == JsonValueKind.Array)
        {
            int rank = 0;
            foreach (var m in merges.EnumerateArray())
            {
                (string a, string b) pair;
                if (m.ValueKind == JsonValueKind.String)
                {
                    var parts = m.GetString()!.Split(' ');
                    if (parts.Length != 2) throw new TokenizerException(Where($"merge '{m.GetString()}' must be two tokens separated by one space."));
                    pair = (parts[0], parts[1]);
                }
                else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2)
                    pair = (Str(m[0], $"merge #{rank}", name), Str(m[1], $"merge #{rank}", name));
                else throw new TokenizerException(Where($"merge #{rank} is neither \"a b\" nor [a, b]."));
                foreach (var part in new[] { pair.a, pair.b, pair.a + pair.b })
                    if (!_vocab.ContainsKey(part)) throw new TokenizerException(Where($"merge '{pair.a} {pair.b}' uses '{part}', which is not in the vocabulary."));
                _mergeRanks.TryAdd(pair, rank++);
            }
        }

        _added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
            foreach (var a in added.EnumerateArray())
            {
                bool Flag(string key) => a.TryGetProperty(key, out var f) && f.ValueKind == JsonValueKind.True;
                if (a.ValueKind != JsonValueKind.Object || !a.TryGetProperty("id", out var idElement) || idElement.ValueKind != JsonValueKind.Number
                    || !idElement.TryGetInt32(out int id) || id < 0 || id >= MaxVocabulary)
                    throw new TokenizerException(Where($"added token {a.GetRawText()} needs an integer \"id\" in 0..{MaxVocabulary - 1}."));
                if (!a.TryGetProperty("content", out var contentElement) || contentElement.ValueKind != JsonValueKind.String)
                    throw new TokenizerException(Where($"added token {id} needs a string \"content\"."));
                string content = contentElement.GetString()!;
                if (content.Length == 0) throw new TokenizerException(Where($"added token {id} has empty content."));
                _added.Add(new AddedToken(id, content, Flag("single_word"), Flag("lstrip"), Flag("rstrip"), Flag("normalized"), Flag("special")));
            }
        _addedById = _added.GroupBy(a => a.Id).ToDictionary(g => g.Key, g => g.First());
        _longestSymbol = Math.Max(2, Math.Max(_vocab.Keys.Select(k => k.Length).DefaultIfEmpty(0).Max(),
            _mergeRanks.Keys.Select(m => m.Item1.Length + m.Item2.Length).DefaultIfEmpty(0).Max()));
        _addedRaw = _added.Where(a => !a.Normalized).OrderByDescending(a => a.Content.Length).ToList();
        _addedNormalized = _added.Where(a => a.Normalized).OrderByDescending(a => a.Content.Length).ToList();

        int size = Math.Max(_vocab.Count == 0 ? 0 : _vocab.Values.Max() + 1, _added.Count == 0 ? 0 : _added.Max(a => a.Id) + 1);
        _idToToken = new string[size];
        foreach (var (tok, id) in _vocab) _idToToken[id] = tok;
        foreach (var a in _added) _idToToken[a.Id] = a.Content;

        if (model.TryGetProperty("unk_token", out var unk) && unk.ValueKind == JsonValueKind.String)
            _unkId = TokenId(unk.GetString()!) ?? throw new TokenizerException(Where($"unk_token '{unk.GetString()}' is not in the vocabulary."));

        _normalize = root.TryGetProperty("normalizer", out var norm) ? Normalizer(norm, name) : s => s;
        _preTokenize = root.TryGetProperty("pre_tokenizer", out var pre) ? PreTokenizer(pre, name) : pieces => pieces;
        _decoder = root.TryGetProperty("decoder", out var dec) ? TokenDecoder.Parse(dec, name) : TokenDecoder.None;

        if (bosToken != null)
        {
            int id = TokenId(bosToken) ?? throw new TokenizerException(Where($"the BOS token '{bosToken}' is not in the vocabulary."));
            Bos = (bosToken, id);
        }
    }

    /// <summary>A string field of an object of the file, or an error naming the field.</summary>
    static string Field(JsonElement e, string key, string what, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v)
            ? Str(v, $"{what} \"{key}\"", name)
            : throw new TokenizerException($"{name}: the {what} needs a string \"{key}\", got {e.GetRawText()}.");

    static string Str(JsonElement v, string what, string name) =>
        v.ValueKind == JsonValueKind.String ? v.GetString()! : throw new TokenizerException($"{name}: {what} must be a string, got {v.GetRawText()}.");

    static JsonElement Required(JsonElement e, string key, string name) =>
        e.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v : throw new TokenizerException($"{name}: missing '{key}'.");

    /// <summary>The id of a token (an added token or a vocabulary entry), or null.</summary>
    public int? TokenId(string token) =>
        _added.FirstOrDefault(a => a.Content == token) is { } a ? a.Id : _vocab.TryGetValue(token, out int id) ? id : null;

    /// <summary>
    /// Reads <c>tokenizer.json</c> from a folder (or the file itself). The BOS token comes from the folder's
    /// <c>tokenizer_config.json</c> or <c>special_tokens_map.json</c> (<c>bos_token</c>, else <c>eos_token</c>, else
    /// <c>&lt;|endoftext|&gt;</c> when the vocabulary has it, as TransformerLens falls back).
    /// </summary>
    public static HuggingFaceTokenizer Load(string path)
    {
        string file = Directory.Exists(path) ? System.IO.Path.Combine(path, "tokenizer.json") : path;
        if (!File.Exists(file)) throw new TokenizerException($"{file}: tokenizer file not found.");
        string folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(file))!;
        string? bos = SpecialToken(folder, "bos_token") ?? SpecialToken(folder, "eos_token");
        string json = Util.JsonInput.ReadText(file, Error);
        var tokenizer = FromJson(json, file, bos);
        // Like TransformerLens: without a configured BOS, <|endoftext|> (GPT-2 / GPT-NeoX's EOS) serves as one.
        if (bos == null && tokenizer.TokenId("<|endoftext|>") != null) tokenizer = FromJson(json, file, "<|endoftext|>");
        return tokenizer;
    }

    /// <summary>Builds a tokenizer from <c>tokenizer.json</c> text; <paramref name="bosToken"/> names the BOS token, if any.</summary>
    public static HuggingFaceTokenizer FromJson(string json, string name, string? bosToken = null)
    {
        using var doc = Util.JsonInput.Parse(json, name, Error);
        try
        {
            return new HuggingFaceTokenizer(name, Util.JsonInput.RootObject(doc, name, Error), bosToken);
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new TokenizerException($"{name}: malformed tokenizer file: {e.Message}", e);
        }
    }

    static Exception Error(string message, Exception? inner) => new TokenizerException(message, inner);

    static string? SpecialToken(string folder, string key)
    {
        foreach (var f in new[] { "tokenizer_config.json", "special_tokens_map.json" })
        {
            string path = System.IO.Path.Combine(folder, f);
            if (!File.Exists(path)) continue;
            using var doc = Util.JsonInput.ReadFile(path, Error, maxBytes: Util.JsonInput.MaxSmallFileBytes);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty(key, out var v))
            {
                if (v.ValueKind == JsonValueKind.String) return v.GetString();
                if (v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String) return c.GetString();
            }
        }
        return null;
    }

    // ---- normalizers ----

    static Func<string, string> Normalizer(JsonElement n, string name)
    {
        if (n.ValueKind == JsonValueKind.Null) return s => s;
        string type = Field(n, "type", "normalizer", name);
        switch (type)
        {
            case "NFC": return s => s.Normalize(NormalizationForm.FormC);
            case "NFD": return s => s.Normalize(NormalizationForm.FormD);
            case "NFKC": return s => s.Normalize(NormalizationForm.FormKC);
            case "NFKD": return s => s.Normalize(NormalizationForm.FormKD);
            case "Lowercase": return s => s.ToLowerInvariant();
            case "Prepend":
                string prefix = Field(n, "prepend", "Prepend normalizer", name);
                return s => s.Length == 0 ? s : prefix + s;
            case "Replace":
                var pattern = Pattern(n.GetProperty("pattern"), name);
                string content = Field(n, "content", "Replace normalizer", name);
                return s => pattern.Replace(s, content.Replace("$", "$$"));
            case "Sequence":
                var steps = n.GetProperty("normalizers").EnumerateArray().Select(x => Normalizer(x, name)).ToList();
                return s => steps.Aggregate(s, (acc, f) => f(acc));
            default:
                throw new TokenizerException($"{name}: normalizer '{type}' is not supported (NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Sequence).");
        }
    }

    /// <summary>
    /// How long one match of a tokenizer file's regular expression may take. A pattern from a file can backtrack
    /// catastrophically (<c>(a+)+$</c>); encoding then fails with a <see cref="TokenizerException"/> instead of hanging.
    /// </summary>
    internal static TimeSpan RegexTimeout { get; set; } = TimeSpan.FromSeconds(2);

    static Regex Pattern(JsonElement p, string name)
    {
        if (p.ValueKind != JsonValueKind.Object) throw new TokenizerException($"{name}: a pattern must be {{\"String\": ...}} or {{\"Regex\": ...}}, got {p.GetRawText()}.");
        if (p.TryGetProperty("String", out var s)) return new Regex(Regex.Escape(Str(s, "pattern String", name)), RegexOptions.CultureInvariant);
        if (p.TryGetProperty("Regex", out var r))
        {
            try
            {
                return new Regex(Str(r, "pattern Regex", name), RegexOptions.CultureInvariant, RegexTimeout);
            }
            catch (ArgumentException e)
            {
                throw new TokenizerException($"{name}: pattern '{r.GetString()}' is not a regular expression .NET understands: {e.Message}", e);
            }
        }
        throw new TokenizerException($"{name}: a pattern must be {{\"String\": ...}} or {{\"Regex\": ...}}.");
    }

    // ---- pre-tokenizers: each turns a list of pieces into a finer list ----

    enum Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

    static Func<List<string>, List<string>> PreTokenizer(JsonElement p, string name)
    {
        if (p.ValueKind == JsonValueKind.Null) return pieces => pieces;
        string type = Field(p, "type", "pre-tokenizer", name);
        bool Flag(string key, bool fallback) => p.TryGetProperty(key, out var f) ? f.ValueKind == JsonValueKind.True : fallback;
        switch (type)
        {
            case "ByteLevel":
            {
                bool prefixSpace = Flag("add_prefix_space", true);
                bool useRegex = Flag("use_regex", true);
                var regex = ByteLevel.Gpt2Pattern();
                return pieces => pieces.SelectMany(piece =>
                {
                    if (prefixSpace && !piece.StartsWith(' ')) piece = " " + piece;
                    var parts = useRegex ? SplitBy(piece, regex, Behavior.Isolated, invert: false) : new List<string> { piece };
                    return parts.Select(ByteLevel.Encode);
                }).ToList();
            }
            case "Digits":
            {
                bool individual = Flag("individual_digits", false);
                var regex = new Regex(individual ? @"\p{N}" : @"\p{N}+", RegexOptions.CultureInvariant);
                return pieces => pieces.SelectMany(piece => SplitBy(piece, regex, Behavior.Isolated, invert: false)).ToList();
            }
            case "Split":
            {
                var regex = Pattern(p.GetProperty("pattern"), name);
                string b = Field(p, "behavior", "Split pre-tokenizer", name);
                if (!Enum.TryParse<Behavior>(b, out var behavior))
                    throw new TokenizerException($"{name}: Split behavior '{b}' is not supported.");
                bool invert = Flag("invert", false);
                return pieces => pieces.SelectMany(piece => SplitBy(piece, regex, behavior, invert)).ToList();
            }
            case "Whitespace":
            {
                var regex = new Regex(@"\w+|[^\w\s]+", RegexOptions.CultureInvariant);
                return pieces => pieces.SelectMany(piece => SplitBy(piece, regex, Behavior.Removed, invert: true)).ToList();
            }
            case "WhitespaceSplit":
                return pieces => pieces.SelectMany(piece => piece.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)).ToList();
            case "Sequence":
            {
                var steps = p.GetProperty("pretokenizers").EnumerateArray().Select(x => PreTokenizer(x, name)).ToList();
                return pieces => steps.Aggregate(pieces, (acc, f) => f(acc));
            }
            default:
                throw new TokenizerException($"{name}: pre-tokenizer '{type}' is not supported (ByteLevel, Digits, Split, Whitespace, WhitespaceSplit, Sequence).");
        }
    }

    /// <summary>Splits <paramref name="text"/> at the matches of <paramref name="regex"/>, as HuggingFace's split behaviours do.</summary>
    static List<string> SplitBy(string text, Regex regex, Behavior behavior, bool invert)
    {
        var segments = new List<(string Text, bool IsMatch)>();
        int last = 0;
        foreach (Match m in regex.Matches(text))
        {
            if (m.Length == 0) continue;
            if (m.Index > last) segments.Add((text[last..m.Index], false));
            segments.Add((m.Value, true));
            last = m.Index + m.Length;
        }
        if (last < text.Length) segments.Add((text[last..], false));
        if (invert) segments = segments.Select(s => (s.Text, !s.IsMatch)).ToList();

        var result = new List<string>();
        switch (behavior)
        {
            case Behavior.Removed:
                result.AddRange(segments.Where(s => !s.IsMatch).Select(s => s.Text));
                break;
            case Behavior.Isolated:
                result.AddRange(segments.Select(s => s.Text));
                break;
            case Behavior.Contiguous:
                for (int i = 0; i < segments.Count; i++)
                    if (segments[i].IsMatch && i > 0 && segments[i - 1].IsMatch) result[^1] += segments[i].Text;
                    else result.Add(segments[i].Text);
                break;
            case Behavior.MergedWithPrevious:
                foreach (var s in segments)
                    if (s.IsMatch && result.Count > 0) result[^1] += s.Text;
                    else result.Add(s.Text);
                break;
            case Behavior.MergedWithNext:
                string pending = "";
                foreach (var s in segments)
                {
                    if (s.IsMatch) pending += s.Text;
                    else
                    {
                        result.Add(pending + s.Text);
                        pending = "";
                    }
                }
                if (pending.Length > 0) result.Add(pending);
                break;
        }
        return result.Where(s => s.Length > 0).ToList();
    }

    // ---- encoding ----

    public IReadOnlyList<int> Encode(string text) => Encode(text, int.MaxValue);

    /// <summary>
    /// Token ids of <paramref name="text"/>, refusing a text that would be more than <paramref name="maxTokens"/> tokens
    /// before running BPE: once the text is split into pre-tokens (linear work), each pre-token of n characters is at
    /// least n / (longest symbol a merge can make) tokens, so an over-long text is known to be too long cheaply.
    /// </summary>
    public IReadOnlyList<int> Encode(string text, int maxTokens)
    {
        try
        {
            var pieces = Pieces(text);
            long atLeast = pieces.Sum(p => p.Added != null ? 1L : (p.Text.Length + _longestSymbol - 1) / _longestSymbol);
            if (atLeast > maxTokens) throw TokenizerExtensions.TooLong(this, text, atLeast, maxTokens, exact: false);
            var ids = new List<int>();
            foreach (var (piece, added) in pieces)
            {
                if (added != null) ids.Add(added.Id);
                else ids.AddRange(EncodeWord(piece));
            }
            if (ids.Count > maxTokens) throw TokenizerExtensions.TooLong(this, text, ids.Count, maxTokens, exact: true);
            return ids;
        }
        catch (RegexMatchTimeoutException e)
        {
            throw new TokenizerException($"{Name}: the regular expression '{e.Pattern}' of the tokenizer file took longer than {e.MatchTimeout.TotalSeconds:0.###} s " +
                                         "on this text (it backtracks catastrophically); the tokenizer file cannot be used.", e);
        }
    }

    /// <summary>The text as added tokens and pre-tokens (what BPE then encodes one by one).</summary>
    List<(string Text, AddedToken? Added)> Pieces(string text)
    {
        var pieces = new List<(string, AddedToken?)>();
        // Added tokens are found first: those matched on raw text, then (after normalizing) the normalized ones.
        foreach (var (rawPart, rawToken) in SplitOnAdded(text, _addedRaw))
        {
            if (rawToken != null)
            {
                pieces.Add((rawToken.Content, rawToken));
                continue;
            }
            foreach (var (part, token) in SplitOnAdded(_normalize(rawPart), _addedNormalized))
            {
                if (token != null)
                {
                    pieces.Add((token.Content, token));
                    continue;
                }
                foreach (var piece in _preTokenize(new List<string> { part })) pieces.Add((piece, null));
            }
        }
        return pieces;
    }

    /// <summary>Splits text into plain parts and added-token matches, leftmost-longest (<paramref name="byLength"/> is longest first).</summary>
    static List<(string Text, AddedToken? Token)> SplitOnAdded(string text, List<AddedToken> byLength)
    {
        var result = new List<(string, AddedToken?)>();
        if (byLength.Count == 0 || text.Length == 0)
        {
            if (text.Length > 0) result.Add((text, null));
            return result;
        }
        int plainStart = 0, i = 0;
        while (i < text.Length)
        {
            AddedToken? hit = null;
            foreach (var t in byLength)
                if (string.CompareOrdinal(text, i, t.Content, 0, t.Content.Length) == 0 && (!t.SingleWord || IsWordBoundary(text, i, t.Content.Length)))
                {
                    hit = t;
                    break;
                }
            if (hit == null)
            {
                i++;
                continue;
            }
            int start = i, end = i + hit.Content.Length;
            if (hit.LStrip) while (start > plainStart && char.IsWhiteSpace(text[start - 1])) start--;
            if (hit.RStrip) while (end < text.Length && char.IsWhiteSpace(text[end])) end++;
            if (start > plainStart) result.Add((text[plainStart..start], null));
            result.Add((hit.Content, hit));
            plainStart = i = end;
        }
        if (plainStart < text.Length) result.Add((text[plainStart..], null));
        return result;
    }

    static bool IsWordBoundary(string text, int start, int length)
    {
        bool before = start == 0 || !char.IsLetterOrDigit(text[start - 1]);
        bool after = start + length >= text.Length || !char.IsLetterOrDigit(text[start + length]);
        return before && after;
    }

    int[] EncodeWord(string word)
    {
        lock (_cacheLock)
            if (_cache.TryGetValue(word, out var cached)) return cached;
        int[] ids = Bpe(word);
        lock (_cacheLock)
        {
            if (_cache.Count > 100_000) _cache.Clear();
            _cache[word] = ids;
        }
        return ids;
    }

    /// <summary>
    /// Byte-pair encoding of one pre-token: repeatedly merge the adjacent pair of lowest rank (leftmost on ties). The
    /// symbols form a linked list and every adjacent pair with a merge waits in a priority queue ordered by (rank,
    /// position), so each merge costs O(log n) instead of a rescan of the word: O(n log n) for a word of n characters,
    /// where the rescanning loop was O(n²) (100 s for one 64 k-character word). Entries made stale by a merge are
    /// skipped when they come up. The result is the same, merge for merge.
    /// </summary>
    internal int[] Bpe(string word)
    {
        if (_ignoreMerges && _vocab.TryGetValue(word, out int whole)) return new[] { whole };
        var symbols = word.EnumerateRunes().Select(r => r.ToString()).ToList();
        if (symbols.Count > 1 && _mergeRanks.Count > 0) symbols = Merge(symbols);
        var ids = new List<int>(symbols.Count);
        foreach (var s in symbols)
        {
            if (_vocab.TryGetValue(s, out int id)) ids.Add(id);
            else if (_byteFallback && Encoding.UTF8.GetBytes(s) is var bytes && bytes.All(b => _vocab.ContainsKey($"<0x{b:X2}>")))
                ids.AddRange(bytes.Select(b => _vocab[$"<0x{b:X2}>"]));
            else if (_unkId is int unk) ids.Add(unk);
            else throw new TokenizerException($"{Name}: cannot encode '{s}' (U+{char.ConvertToUtf32(s, 0):X4}): not in the vocabulary and the tokenizer has no unknown token.");
        }
        return ids.ToArray();
    }

    List<string> Merge(List<string> start)
    {
        int n = start.Count;
        var symbols = start.ToArray<string?>();
        var next = new int[n];
        var prev = new int[n];
        var version = new int[n]; // bumped whenever a symbol changes: queued pairs that saw the old one are stale
        for (int i = 0; i < n; i++)
        {
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }
        var queue = new PriorityQueue<(int Left, int Right, int LeftVersion, int RightVersion), long>();
        void Consider(int left)
        {
            if (left < 0) return;
            int right = next[left];
            if (right >= 0 && _mergeRanks.TryGetValue((symbols[left]!, symbols[right]!), out int rank))
                queue.Enqueue((left, right, version[left], version[right]), ((long)rank << 32) | (uint)left); // leftmost on equal ranks
        }
        for (int i = 0; i + 1 < n; i++) Consider(i);
        while (queue.TryDequeue(out var pair, out _))
        {
            var (left, right, leftVersion, rightVersion) = pair;
            if (symbols[left] is null || symbols[right] is null || next[left] != right || version[left] != leftVersion || version[right] != rightVersion)
                continue;
            symbols[left] += symbols[right];
            version[left]++;
            symbols[right] = null;
            next[left] = next[right];
            if (next[left] >= 0) prev[next[left]] = left;
            Consider(prev[left]);
            Consider(left);
        }
        var merged = new List<string>();
        for (int i = 0; i >= 0; i = next[i]) merged.Add(symbols[i]!);
        return merged;
    }

    // ---- decoding ----

    public string Decode(IEnumerable<int> ids) => _decoder.Decode(ids.Select(id =>
        id >= 0 && id < _idToToken.Length && _idToToken[id] != null
            ? new DecodedToken(_idToToken[id], _addedById.ContainsKey(id))
            : throw new ArgumentException($"Token id {id} is not in tokenizer '{Name}' (vocabulary size {VocabSize}).")));

    /// <summary>The vocabulary string of one id (byte-level spelling for byte-level tokenizers).</summary>
    public string TokenText(int id) => id >= 0 && id < _idToToken.Length && _idToToken[id] != null
        ? _idToToken[id]
        : throw new ArgumentException($"Token id {id} is not in tokenizer '{Name}'.");
}

/// <summary>A tokenizer file that cannot be used, with a message naming the file and the problem.</summary>
public sealed class TokenizerException : Exception
{
    public TokenizerException(string message) : base(message) { }
    public TokenizerException(string message, Exception? inner) : base(message, inner) { }
}
