using Workbook.Embedded;

namespace Workbook.Tokenization;

/// <summary>Finds the tokenizer that belongs to a model given the way the user named it.</summary>
public static class Tokenizers
{
    /// <summary>
    /// The tokenizer of an embedded model alias, or the word-level <c>tokenizer.json</c> of a checkpoint folder;
    /// null when neither applies (other tokenizers are not recognised here yet).
    /// </summary>
    public static ITokenizer? ForModel(string model)
    {
        if (EmbeddedModels.TryGetTokenizer(model) is { } embedded) return embedded;
        string path = Path.Combine(model, "tokenizer.json");
        if (!File.Exists(path)) return null;
        try
        {
            return WordLevelTokenizer.Load(path);
        }
        catch (FormatException)
        {
            return null;   // not a word-level tokenizer
        }
    }
}
