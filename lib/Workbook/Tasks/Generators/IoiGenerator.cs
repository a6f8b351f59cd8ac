using Workbook.Randomness;
using Workbook.Tokenization;

namespace Workbook.Tasks.Generators;

/// <summary>Name order of an IOI template: "Then, A and B ... B gave ... to A" (ABBA) or "Then, B and A ..." (BABA).</summary>
public enum IoiOrder { ABBA, BABA }

/// <summary>
/// Indirect Object Identification prompts (spec D.2), generated as AutoCircuit's <c>ioi_generator.py</c> does:
/// one template and one name order per dataset; Python <c>random.seed(seed)</c> draws the template, three distinct
/// names, a place and an object per prompt; the ABC corruption replaces the first three names by X, Y, Z drawn
/// independently with numpy's <c>choice</c> (seed = seed + the character codes of "ABB->XYZ, BAB->XYZ") from the
/// names the prompt does not use. With seed 0, 1,000 prompts and GPT-2's tokenizer the output equals the original
/// files byte for byte. Word positions (IO, S1, S2, end, ...) are found by tokenizing, so any tokenizer whose names
/// are single tokens works (GPT-2's, or a word-level toy tokenizer).
/// </summary>
public static class IoiGenerator
{
    public const string AbcFlip = "ABB->XYZ, BAB->XYZ";

    public static IReadOnlyList<string> Names { get; } = (
        "Aaron Adam Alan Alex Alice Amy Anderson Andre Andrew Andy Anna Anthony Arthur Austin Blake Brandon Brian Carter " +
        "Charles Charlie Christian Christopher Clark Cole Collins Connor Crew Crystal Daniel David Dean Edward Elizabeth " +
        "Emily Eric Eva Ford Frank George Georgia Graham Grant Henry Ian Jack Jacob Jake James Jamie Jane Jason Jay " +
        "Jennifer Jeremy Jessica John Jonathan Jordan Joseph Joshua Justin Kate Kelly Kevin Kyle Laura Leon Lewis Lisa " +
        "Louis Luke Madison Marco Marcus Maria Mark Martin Mary Matthew Max Michael Michelle Morgan Patrick Paul Peter " +
        "Prince Rachel Richard River Robert Roman Rose Ruby Russell Ryan Sarah Scott Sean Simon Stephen Steven Sullivan " +
        "Taylor Thomas Tyler Victoria Warren William").Split(' ');

    public static IReadOnlyList<string> Places { get; } = "store garden restaurant school hospital office house station".Split(' ');
    public static IReadOnlyList<string> Objects { get; } = "ring kiss bone basketball computer necklace drink snack".Split(' ');

    /// <summary>The 15 BABA templates (spec D.2): [B] is the subject S, [A] the indirect object IO (the answer).</summary>
    public static IReadOnlyList<string> BabaTemplates { get; } = new[]
    {
        "Then, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to [A]",
        "Then, [B] and [A] had a lot of fun at the [PLACE]. [B] gave a [OBJECT] to [A]",
        "Then, [B] and [A] were working at the [PLACE]. [B] decided to give a [OBJECT] to [A]",
        "Then, [B] and [A] were thinking about going to the [PLACE]. [B] wanted to give a [OBJECT] to [A]",
        "Then, [B] and [A] had a long argument, and afterwards [B] said to [A]",
        "After [B] and [A] went to the [PLACE], [B] gave a [OBJECT] to [A]",
        "When [B] and [A] got a [OBJECT] at the [PLACE], [B] decided to give it to [A]",
        "When [B] and [A] got a [OBJECT] at the [PLACE], [B] decided to give the [OBJECT] to [A]",
        "While [B] and [A] were working at the [PLACE], [B] gave a [OBJECT] to [A]",
        "While [B] and [A] were commuting to the [PLACE], [B] gave a [OBJECT] to [A]",
        "After the lunch, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to [A]",
        "Afterwards, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to [A]",
        "Then, [B] and [A] had a long argument. Afterwards [B] said to [A]",
        "The [PLACE] [B] and [A] went to had a [OBJECT]. [B] gave it to [A]",
        "Friends [B] and [A] found a [OBJECT] at the [PLACE]. [B] gave it to [A]",
    };

    /// <summary>The ABBA templates: the BABA texts with the first clause's "[B] and [A]" swapped.</summary>
    public static IReadOnlyList<string> AbbaTemplates { get; } = BabaTemplates.Select(SwapFirstClause).ToArray();

    public static int TemplateCount => BabaTemplates.Count;

    static string SwapFirstClause(string template)
    {
        int b = template.IndexOf("[B]", StringComparison.Ordinal), a = template.IndexOf("[A]", StringComparison.Ordinal);
        if (b < 0 || a < b) throw new InvalidOperationException($"IOI template '{template}' does not start with [B] ... [A].");
        return template[..b] + "[A]" + template[(b + 3)..a] + "[B]" + template[(a + 3)..];
    }

    public static string Template(IoiOrder order, int templateIndex)
    {
        if (templateIndex < 0 || templateIndex >= TemplateCount)
            throw new ArgumentOutOfRangeException(nameof(templateIndex), $"IOI template index must be 0..{TemplateCount - 1}, got {templateIndex}.");
        return order == IoiOrder.ABBA ? AbbaTemplates[templateIndex] : BabaTemplates[templateIndex];
    }

    /// <summary>The name of one IOI dataset part, e.g. "ABBA-3".</summary>
    public static string PartName(IoiOrder order, int templateIndex) => $"{order}-{templateIndex}";

    /// <summary>One generated clean sentence with the answer still attached, and its names.</summary>
    public sealed record CleanSentence(string Text, string IndirectObject, string Subject);

    /// <summary>The clean sentences (answer included), exactly as AutoCircuit's <c>gen_prompt_uniform</c> draws them.</summary>
    public static List<CleanSentence> CleanSentences(IoiOrder order, int templateIndex, int count, int seed)
    {
        var templates = new[] { Template(order, templateIndex) };
        var rng = new PythonRandom(seed);
        var result = new List<CleanSentence>(count);
        for (int i = 0; i < count; i++)
        {
            string template = rng.Choice(templates); // one template, but the draw still consumes the generator
            string name1 = "", name2 = "", name3 = "";
            while (new HashSet<string> { name1, name2, name3 }.Count < 3)
            {
                name1 = rng.Choice(Names);
                name2 = rng.Choice(Names);
                name3 = rng.Choice(Names);
            }
            string place = rng.Choice(Places), obj = rng.Choice(Objects);
            string text = template.Replace("[PLACE]", place).Replace("[OBJECT]", obj).Replace("[A]", name1).Replace("[B]", name2);
            result.Add(new CleanSentence(text, name1, name2));
        }
        return result;
    }

    /// <summary>The ABC corruption of each sentence (answer included): the first three names become X, Y, Z.</summary>
    public static List<string> AbcSentences(IReadOnlyList<CleanSentence> clean, int seed)
    {
        var rng = new NumpyRandomState((uint)(seed + AbcFlip.Sum(c => (int)c)));
        var names = new HashSet<string>(Names, StringComparer.Ordinal);
        var result = new List<string>(clean.Count);
        foreach (var sentence in clean)
        {
            var words = sentence.Text.Split(' ');
            var namePositions = Enumerable.Range(0, words.Length).Where(i => names.Contains(words[i])).Take(3).ToArray();
            if (namePositions.Length < 3) throw new InvalidOperationException($"IOI sentence '{sentence.Text}' has fewer than three names.");
            var own = namePositions.Select(i => words[i]).ToHashSet(StringComparer.Ordinal);
            var candidates = Names.Where(n => !own.Contains(n)).ToArray();
            // X, Y and Z are drawn independently (with replacement), so they may coincide (spec D.2).
            var replacements = new[] { rng.Choice(candidates), rng.Choice(candidates), rng.Choice(candidates) };
            for (int k = 0; k < 3; k++) words[namePositions[k]] = replacements[k];
            result.Add(string.Join(' ', words));
        }
        return result;
    }

    /// <summary>
    /// One IOI dataset part: <paramref name="count"/> prompts of one template and order, the ABC corruption, and
    /// word positions found with <paramref name="tokenizer"/> on the first prompt (IO, IO-1, IO+1, S1, S1-1, S1+1,
    /// S2, end, starts, punct; without BOS). Every prompt must tokenize to the same length with the same positions.
    /// </summary>
    public static PromptDataset Generate(IoiOrder order, int templateIndex, int count, int seed, ITokenizer tokenizer)
    {
        if (count < 1) throw new ArgumentException($"The number of IOI prompts must be at least 1, got {count}.");
        var clean = CleanSentences(order, templateIndex, count, seed);
        var corrupt = AbcSentences(clean, seed);
        var prompts = new List<TaskPrompt>(count);
        for (int i = 0; i < count; i++)
        {
            prompts.Add(new TaskPrompt(
                PromptInput.FromText(WithoutLastWord(clean[i].Text)),
                PromptInput.FromText(WithoutLastWord(corrupt[i])),
                AnswerList.FromTexts(new[] { " " + LastWord(clean[i].Text) }),
                AnswerList.FromTexts(new[] { " " + clean[i].Subject })));
        }
        var positions = WordPositionsOf(clean[0], tokenizer);
        for (int i = 1; i < count; i++)
        {
            var other = WordPositionsOf(clean[i], tokenizer);
            if (other.ToString() != positions.ToString())
                throw new InvalidOperationException(
                    $"IOI prompt {i} ('{clean[i].Text}') has word positions {other} under tokenizer '{tokenizer.Name}', but prompt 0 has {positions}; " +
                    "every name must be a single token so that all prompts of a template line up.");
        }
        return new PromptDataset { Name = PartName(order, templateIndex), WordIdxs = positions, Prompts = prompts };
    }

    /// <summary>All 30 parts (ABBA then BABA, templates 0..14), as the paper's IOI experiments use them.</summary>
    public static IEnumerable<PromptDataset> GenerateAll(int count, int seed, ITokenizer tokenizer) =>
        from order in new[] { IoiOrder.ABBA, IoiOrder.BABA }
        from t in Enumerable.Range(0, TemplateCount)
        select Generate(order, t, count, seed, tokenizer);

    static string WithoutLastWord(string text) => string.Join(' ', text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[..^1]);
    static string LastWord(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[^1];

    /// <summary>
    /// The labelled positions of one sentence: IO and S1 are the first occurrences of the names' (first) tokens, S2
    /// the last occurrence of S, end the last token of the prompt, punct the last '.' (or else the last ',') of
    /// the sentence, as AutoCircuit computes them.
    /// </summary>
    public static WordPositions WordPositionsOf(CleanSentence sentence, ITokenizer tokenizer)
    {
        var prompt = tokenizer.Encode(WithoutLastWord(sentence.Text)).ToList();
        int io = IndexOf(prompt, FirstToken(tokenizer, " " + sentence.IndirectObject), sentence, "IO");
        int sToken = FirstToken(tokenizer, " " + sentence.Subject);
        int s1 = IndexOf(prompt, sToken, sentence, "S1");
        int s2 = prompt.LastIndexOf(sToken);
        int end = prompt.Count - 1;
        var entries = new List<KeyValuePair<string, int>>
        {
            new("IO", io), new("IO-1", io - 1), new("IO+1", io + 1),
            new("S1", s1), new("S1-1", s1 - 1), new("S1+1", s1 + 1),
            new("S2", s2), new("end", end), new("starts", 0),
        };
        if (PunctuationIndex(sentence.Text, tokenizer) is int punct) entries.Add(new("punct", punct));
        return new WordPositions(entries);
    }

    static int FirstToken(ITokenizer tokenizer, string text)
    {
        var ids = tokenizer.Encode(text);
        return ids.Count > 0 ? ids[0] : throw new ArgumentException($"Tokenizer '{tokenizer.Name}' encodes '{text}' to no tokens.");
    }

    static int IndexOf(List<int> tokens, int token, CleanSentence sentence, string label)
    {
        int i = tokens.IndexOf(token);
        return i >= 0 ? i : throw new InvalidOperationException($"The {label} name's token does not occur in the tokenized IOI prompt '{sentence.Text}'.");
    }

    // AutoCircuit's get_word_idxs([",", "."]) on the full sentence: the later word wins; a repeated one gives its last index.
    static int? PunctuationIndex(string fullText, ITokenizer tokenizer)
    {
        IReadOnlyList<int> tokens;
        try
        {
            tokens = tokenizer.Encode(fullText);
        }
        catch (ArgumentException)
        {
            return null;
        }
        int? result = null;
        foreach (var mark in new[] { ",", "." })
        {
            if (!fullText.Contains(mark, StringComparison.Ordinal)) continue;
            IReadOnlyList<int> ids;
            try
            {
                ids = tokenizer.Encode(mark);
            }
            catch (ArgumentException)
            {
                return null; // a word-level tokenizer without punctuation tokens: no punct label
            }
            if (ids.Count == 0) continue;
            int last = tokens.ToList().LastIndexOf(ids[0]);
            if (last >= 0) result = last;
        }
        return result;
    }
}
