using System.Text.RegularExpressions;
using Workbook.Tasks.Generators;
using Workbook.Tokenization;
using Workbook.Util;

namespace Workbook.Embedded;

/// <summary>Which name comes first in the opening clause: IO then S ("ABBA") or S then IO ("BABA").</summary>
public enum IoiNameOrder { Abba, Baba }

/// <summary>Token positions of one IOI prompt (0-based, no BOS): the IOI circuit's position labels.</summary>
public sealed record IoiPositions(int IndirectObject, int Subject1, int Subject1Plus1, int Subject2, int End)
{
    /// <summary>The position of <paramref name="label"/>.</summary>
    public int this[IoiPosition label] => label switch
    {
        IoiPosition.IndirectObject => IndirectObject,
        IoiPosition.Subject1 => Subject1,
        IoiPosition.Subject1Plus1 => Subject1Plus1,
        IoiPosition.Subject2 => Subject2,
        IoiPosition.End => End,
        _ => throw new ArgumentOutOfRangeException(nameof(label), label, "Not a single position."),
    };
}

/// <summary>IOI position labels (Wang et al.): IO, S1, S1+1, S2, end.</summary>
public enum IoiPosition { IndirectObject, Subject1, Subject1Plus1, Subject2, End }

/// <summary>
/// One IOI prompt and its ABC corruption (the first three names replaced by names drawn independently from
/// those not in the prompt). Token ids come from the tokenizer the prompts were generated with; clean and corrupt
/// have the same length and positions.
/// </summary>
public sealed record IoiPromptPair(
    int Template,
    IoiNameOrder Order,
    string IndirectObject,
    string Subject,
    string Place,
    string Object,
    string Clean,
    string Corrupt,
    int[] CleanTokens,
    int[] CorruptTokens,
    int AnswerToken,
    int WrongAnswerToken,
    IoiPositions Positions);

/// <summary>
/// The IOI sentence distribution of the paper (spec D.2: AutoCircuit's 15 templates, PLACES, OBJECTS and the 109
/// NAMES), with a generator of clean / ABC-corrupt prompt pairs for any tokenizer under which every name is a single
/// token. Generation is seeded with <see cref="SeededRandom"/>, so it is reproducible but does not reproduce
/// AutoCircuit's Python-random files.
/// </summary>
public static partial class IoiSentences
{
    /// <summary>The 15 templates in BABA form: [B] = subject, [A] = indirect object; the final [A] is the answer.</summary>
    public static readonly IReadOnlyList<string> BabaTemplates = IoiGenerator.BabaTemplates;

    public static readonly IReadOnlyList<string> Places = IoiGenerator.Places;

    public static readonly IReadOnlyList<string> Objects = IoiGenerator.Objects;

    /// <summary>The 109 names (spec D.2), shared with the AutoCircuit-compatible generator <see cref="IoiGenerator"/>.</summary>
    public static readonly IReadOnlyList<string> Names = IoiGenerator.Names;

    [GeneratedRegex(@"\[(A|B|PLACE|OBJECT)\]")]
    private static partial Regex Placeholder();

    /// <summary>Template <paramref name="template"/> with its opening "[B] and [A]" in the requested order.</summary>
    public static string Template(int template, IoiNameOrder order)
    {
        if (template < 0 || template >= BabaTemplates.Count)
            throw new ArgumentOutOfRangeException(nameof(template), $"IOI template index must be 0..{BabaTemplates.Count - 1}, got {template}.");
        string t = BabaTemplates[template];
        if (order == IoiNameOrder.Baba) return t;
        int i = t.IndexOf("[B] and [A]", StringComparison.Ordinal);
        return t[..i] + "[A] and [B]" + t[(i + "[B] and [A]".Length)..];
    }

    /// <summary>
    /// The prompt text (everything before the final answer) with the name slots filled in order by
    /// <paramref name="names"/>(slot index, placeholder).
    /// </summary>
    static string Fill(string template, Func<int, string, string> names, string place, string obj)
    {
        var answer = template.LastIndexOf(" [A]", StringComparison.Ordinal);
        if (answer < 0 || answer + 4 != template.Length) throw new InvalidOperationException($"Template '{template}' does not end with ' [A]'.");
        int slot = 0;
        return Placeholder().Replace(template[..answer], m => m.Groups[1].Value switch
        {
            "PLACE" => place,
            "OBJECT" => obj,
            var letter => names(slot++, letter),
        });
    }

    /// <summary>Every word the sentences use (template words, punctuation, names, places, objects), in first-use order.</summary>
    public static IReadOnlyList<string> Words()
    {
        var words = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Add(string w)
        {
            if (seen.Add(w)) words.Add(w);
        }
        foreach (var t in BabaTemplates)
            foreach (Match m in Regex.Matches(Placeholder().Replace(t, " "), @"\w+|[^\w\s]+")) Add(m.Value);
        foreach (var w in Names.Concat(Places).Concat(Objects)) Add(w);
        return words;
    }

    /// <summary>
    /// <paramref name="count"/> clean/ABC prompt pairs: template and name order uniform unless fixed, IO and S two
    /// different names, place and object uniform. Deterministic for a given <paramref name="seed"/>.
    /// </summary>
    public static IReadOnlyList<IoiPromptPair> Generate(ITokenizer tokenizer, int count, ulong seed, int? template = null, IoiNameOrder? order = null)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count));
        var rng = new SeededRandom(seed);
        var result = new List<IoiPromptPair>(count);
        for (int i = 0; i < count; i++)
        {
            int t = template ?? rng.Next(BabaTemplates.Count);
            var o = order ?? (rng.Next(2) == 0 ? IoiNameOrder.Abba : IoiNameOrder.Baba);
            string io = rng.Choice(Names), s;
            do s = rng.Choice(Names); while (s == io);
            string place = rng.Choice(Places), obj = rng.Choice(Objects);
            // ABC: each of the first three name slots gets an independent draw among the other names (they may coincide).
            var replacements = new string[3];
            for (int k = 0; k < 3; k++)
                do replacements[k] = rng.Choice(Names); while (replacements[k] == io || replacements[k] == s);
            try
            {
                result.Add(Build(tokenizer, t, o, io, s, place, obj, replacements));
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"IOI prompt {i} (template {t}, {o}): {e.Message}", e);
            }
        }
        return result;
    }

    /// <summary>One prompt pair from explicit choices; <paramref name="abcNames"/> replace the first three name slots of the corrupt prompt.</summary>
    public static IoiPromptPair Build(ITokenizer tokenizer, int template, IoiNameOrder order, string io, string subject, string place, string obj, IReadOnlyList<string> abcNames)
    {
        if (abcNames.Count != 3) throw new ArgumentException("An ABC corruption needs three names.", nameof(abcNames));
        string text = Template(template, order);
        string clean = Fill(text, (_, letter) => letter == "A" ? io : subject, place, obj);
        string corrupt = Fill(text, (slot, _) => abcNames[slot], place, obj);
        var cleanTokens = tokenizer.Encode(clean).ToArray();
        var corruptTokens = tokenizer.Encode(corrupt).ToArray();
        if (cleanTokens.Length != corruptTokens.Length)
            throw new ArgumentException($"Tokenizer '{tokenizer.Name}' gives clean and corrupt prompts different lengths ({cleanTokens.Length} and {corruptTokens.Length}): names must be single tokens.");
        int ioToken = tokenizer.SingleToken(" " + io), sToken = tokenizer.SingleToken(" " + subject);
        int ioPos = Array.IndexOf(cleanTokens, ioToken), s1 = Array.IndexOf(cleanTokens, sToken), s2 = Array.LastIndexOf(cleanTokens, sToken);
        if (ioPos < 0 || s1 < 0 || s2 == s1)
            throw new ArgumentException($"Tokenizer '{tokenizer.Name}' does not tokenize names in context as their single tokens (prompt \"{clean}\").");
        var positions = new IoiPositions(ioPos, s1, s1 + 1, s2, cleanTokens.Length - 1);
        return new IoiPromptPair(template, order, io, subject, place, obj, clean, corrupt, cleanTokens, corruptTokens, ioToken, sToken, positions);
    }
}
