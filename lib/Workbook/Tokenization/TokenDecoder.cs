using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Workbook.Tokenization;

/// <summary>A token on its way through a decoder: its text, and whether it is an added token (kept as written).</summary>
internal sealed record DecodedToken(string Text, bool Added);

/// <summary>
/// The <c>decoder</c> of a <c>tokenizer.json</c>: a chain of steps over the tokens' strings, as HuggingFace's tokenizers
/// apply them, then the strings joined. Byte-level files (GPT-2, GPT-NeoX) use <c>ByteLevel</c>; SentencePiece-style
/// files (Llama, Mistral) <c>Replace</c> "▁" by a space, <c>ByteFallback</c>, <c>Fuse</c> and <c>Strip</c>, or
/// <c>Metaspace</c>. A new tokenizer family that uses these needs no change here; any other step is refused by name.
/// </summary>
internal abstract class TokenDecoder
{
    public abstract List<DecodedToken> Apply(List<DecodedToken> tokens);

    /// <summary>The text of <paramref name="tokens"/> after every step.</summary>
    public string Decode(IEnumerable<DecodedToken> tokens) => string.Concat(Apply(tokens.ToList()).Select(t => t.Text));

    /// <summary>No decoder: the tokens' strings, concatenated.</summary>
    public static TokenDecoder None { get; } = new Chain(Array.Empty<TokenDecoder>());

    /// <summary>The decoder a <c>tokenizer.json</c> declares (null: none); an unsupported step is a <see cref="TokenizerException"/> naming it.</summary>
    public static TokenDecoder Parse(JsonElement d, string name)
    {
        if (d.ValueKind == JsonValueKind.Null) return None;
        string Str(string key) => d.ValueKind == JsonValueKind.Object && d.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()!
            : throw new TokenizerException($"{name}: the decoder needs a string \"{key}\", got {d.GetRawText()}.");
        int Int(string key) => d.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) && i >= 0
            ? i
            : throw new TokenizerException($"{name}: decoder {Str("type")} needs a non-negative integer \"{key}\".");
        string type = Str("type");
        return type switch
        {
            "ByteLevel" => new ByteLevelStep(),
            "ByteFallback" => new ByteFallbackStep(),
            "Fuse" => new FuseStep(),
            "Replace" => new ReplaceStep(ReplacePattern(d, name), Str("content")),
            "Strip" => new StripStep(Str("content"), Int("start"), Int("stop")),
            "Metaspace" => new MetaspaceStep(d.TryGetProperty("replacement", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()! : "▁",
                !(d.TryGetProperty("prepend_scheme", out var p) && p.ValueKind == JsonValueKind.String && p.GetString() == "never")),
            "Sequence" when d.TryGetProperty("decoders", out var list) && list.ValueKind == JsonValueKind.Array =>
                new Chain(list.EnumerateArray().Select(x => Parse(x, name)).ToArray()),
            "Sequence" => throw new TokenizerException($"{name}: decoder Sequence needs a \"decoders\" array."),
            _ => throw new TokenizerException($"{name}: decoder '{type}' is not supported (ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)."),
        };
    }

    static string ReplacePattern(JsonElement d, string name) =>
        d.TryGetProperty("pattern", out var p) && p.ValueKind == JsonValueKind.Object && p.TryGetProperty("String", out var s) && s.ValueKind == JsonValueKind.String
            ? s.GetString()!
            : throw new TokenizerException($"{name}: decoder Replace needs a {{\"String\": ...}} pattern (regular expressions are not supported).");

    sealed class Chain(IReadOnlyList<TokenDecoder> steps) : TokenDecoder
    {
        public override List<DecodedToken> Apply(List<DecodedToken> tokens)
        {
            foreach (var step in steps) tokens = step.Apply(tokens);
            return tokens;
        }
    }

    /// <summary>Byte-level characters back to bytes, all tokens at once (added tokens stand for their own UTF-8).</summary>
    sealed class ByteLevelStep : TokenDecoder
    {
        public override List<DecodedToken> Apply(List<DecodedToken> tokens)
        {
            var bytes = new List<byte>();
            foreach (var t in tokens)
            {
                if (t.Added) bytes.AddRange(Encoding.UTF8.GetBytes(t.Text));
                else ByteLevel.AppendBytes(t.Text, bytes);
            }
            return new List<DecodedToken> { new(Encoding.UTF8.GetString(bytes.ToArray()), false) };
        }
    }

    /// <summary>Runs of <c>&lt;0xHH&gt;</c> tokens become the text their bytes spell (U+FFFD per byte when they are not UTF-8).</summary>
    sealed class ByteFallbackStep : TokenDecoder
    {
        static readonly UTF8Encoding Strict = new(false, throwOnInvalidBytes: true);

        public override List<DecodedToken> Apply(List<DecodedToken> tokens)
        {
            var result = new List<DecodedToken>();
            var pending = new List<byte>();
            void Flush()
            {
                if (pending.Count == 0) return;
                string text;
                try
                {
                    text = Strict.GetString(pending.ToArray());
                }
                catch (DecoderFallbackException)
                {
                    text = new string('\uFFFD', pending.Count);
                }
                result.Add(new DecodedToken(text, false));
                pending.Clear();
            }
            foreach (var t in tokens)
            {
                if (t.Text.Length == 6 && t.Text.StartsWith("<0x", StringComparison.Ordinal) && t.Text[5] == '>'
                    && byte.TryParse(t.Text.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte b))
                {
                    pending.Add(b);
                    continue;
                }
                Flush();
                result.Add(t);
            }
            Flush();
            return result;
        }
    }

    sealed class FuseStep : TokenDecoder
    {
        public override List<DecodedToken> Apply(List<DecodedToken> tokens) =>
            new() { new DecodedToken(string.Concat(tokens.Select(t => t.Text)), false) };
    }

    sealed class ReplaceStep(string pattern, string content) : TokenDecoder
    {
        public override List<DecodedToken> Apply(List<DecodedToken> tokens) =>
            tokens.Select(t => t with { Text = pattern.Length == 0 ? t.Text : t.Text.Replace(pattern, content, StringComparison.Ordinal) }).ToList();
    }

    /// <summary>Removes up to <paramref name="start"/> leading and <paramref name="stop"/> trailing <paramref name="content"/> characters of each token.</summary>
    sealed class StripStep(string content, int start, int stop) : TokenDecoder
    {
        public override List<DecodedToken> Apply(List<DecodedToken> tokens) => tokens.Select(t =>
        {
            if (content.Length != 1) return t;
            string s = t.Text;
            int from = 0, to = s.Length;
            while (from < to && from < start && s[from] == content[0]) from++;
            while (to > from && s.Length - to < stop && s[to - 1] == content[0]) to--;
            return t with { Text = s[from..to] };
        }).ToList();
    }

    /// <summary>The replacement character back to spaces; the first token's leading space goes when the encoder prepended one.</summary>
    sealed class MetaspaceStep(string replacement, bool prepended) : TokenDecoder
    {
        public override List<DecodedToken> Apply(List<DecodedToken> tokens) => tokens.Select((t, i) =>
        {
            string s = t.Text.Replace(replacement, " ", StringComparison.Ordinal);
            return t with { Text = i == 0 && prepended && s.StartsWith(' ') ? s[1..] : s };
        }).ToList();
    }
}
