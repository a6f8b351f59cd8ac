using System.Text.RegularExpressions;

namespace Workbook.Hub;

/// <summary>
/// A hub model repository id: <c>owner/name</c>, or a bare <c>name</c> for the few legacy top-level models
/// (such as <c>gpt2</c>). Validated so that it can never escape the cache folder.
/// </summary>
public sealed partial record RepoId
{
    public string Value { get; }

    RepoId(string value) => Value = value;

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._\-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._\-]{0,95})?$")]
    private static partial Regex Pattern();

    public static bool TryParse(string text, out RepoId? id)
    {
        id = null;
        if (string.IsNullOrEmpty(text) || !Pattern().IsMatch(text) || text.Contains("..") || text.Contains("--")
            || text.EndsWith(".git", StringComparison.Ordinal))
            return false;
        id = new RepoId(text);
        return true;
    }

    public static RepoId Parse(string text) => TryParse(text, out var id)
        ? id!
        : throw new ArgumentException($"'{text}' is not a hub repository id (expected owner/name, e.g. EleutherAI/pythia-2.8b-deduped).");

    /// <summary>The cache folder name, as the Python tools spell it: <c>models--owner--name</c>.</summary>
    public string CacheFolderName => "models--" + Value.Replace("/", "--");

    /// <summary>The repository id encoded by a cache folder name, or null when the name is not a model folder.</summary>
    public static RepoId? FromCacheFolderName(string folder)
    {
        if (!folder.StartsWith("models--", StringComparison.Ordinal)) return null;
        var parts = folder["models--".Length..].Split("--");
        if (parts.Length is < 1 or > 2) return null;
        return TryParse(string.Join("/", parts), out var id) ? id : null;
    }

    public override string ToString() => Value;
}
