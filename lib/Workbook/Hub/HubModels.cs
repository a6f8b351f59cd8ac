namespace Workbook.Hub;

/// <summary>
/// A model on the hub: its repository, other ids the same checkpoint may be cached under (the hub renamed some
/// repositories), and the repository holding its tokenizer when that is a different one.
/// </summary>
public sealed record HubModel(string Name, RepoId Repo, IReadOnlyList<RepoId> AlsoCachedAs, RepoId? TokenizerRepo)
{
    /// <summary>Every repository id the checkpoint may be cached under, the canonical one first.</summary>
    public IEnumerable<RepoId> CacheCandidates => AlsoCachedAs.Prepend(Repo).Distinct();
}

/// <summary>The short names of the paper's models, and hub ids (<c>owner/name</c>) for any other.</summary>
public static class HubModels
{
    static HubModel Make(string name, string repo, string[]? alsoCachedAs = null, string? tokenizerRepo = null) =>
        new(name, RepoId.Parse(repo), (alsoCachedAs ?? Array.Empty<string>()).Select(RepoId.Parse).ToList(),
            tokenizerRepo == null ? null : RepoId.Parse(tokenizerRepo));

    static readonly HubModel Gpt2 = Make("gpt2", "gpt2", new[] { "openai-community/gpt2" });
    static readonly HubModel AttnOnly4L = Make("attn-only-4l", "NeelNanda/Attn_Only_4L512W_C4_Code", tokenizerRepo: "NeelNanda/gpt-neox-tokenizer-digits");
    static readonly HubModel Pythia = Make("pythia-2.8b-deduped", "EleutherAI/pythia-2.8b-deduped");

    /// <summary>Alias → model. Paper section E: GPT-2 small (IOI), attn-only-4l (Docstring), Pythia-2.8B-deduped (Sports Players).</summary>
    public static readonly IReadOnlyDictionary<string, HubModel> Aliases = new Dictionary<string, HubModel>(StringComparer.OrdinalIgnoreCase)
    {
        ["gpt2"] = Gpt2,
        ["gpt2-small"] = Gpt2,
        ["attn-only-4l"] = AttnOnly4L,
        ["pythia-2.8b-deduped"] = Pythia,
    };

    /// <summary>The alias, or a hub id (<c>owner/name</c>); null when <paramref name="spec"/> is neither.</summary>
    public static HubModel? TryResolve(string spec)
    {
        if (Aliases.TryGetValue(spec, out var model)) return model;
        // A hub id known by another spelling (openai-community/gpt2, the tokenizer-less TL repo) keeps its extras.
        foreach (var known in Aliases.Values.Distinct())
            foreach (var candidate in known.CacheCandidates)
                if (string.Equals(candidate.Value, spec, StringComparison.Ordinal))
                    return known with { Name = spec, Repo = candidate, AlsoCachedAs = known.CacheCandidates.Where(c => c != candidate).ToList() };
        if (!spec.Contains('/') || !RepoId.TryParse(spec, out var id)) return null;
        return new HubModel(spec, id!, Array.Empty<RepoId>(), null);
    }
}
