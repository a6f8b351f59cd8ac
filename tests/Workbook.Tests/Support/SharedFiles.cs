namespace Workbook.Tests.Support;

/// <summary>Locates the team's shared reference files (fixtures, AutoCircuit datasets) outside the repository.</summary>
public static class SharedFiles
{
    static readonly Lazy<string> RootLazy = new(FindRoot);

    public static string Root => RootLazy.Value;
    public static string Fixtures => Path.Combine(Root, "fixtures");
    public static string Fixture(string name) => Path.Combine(Fixtures, name);
    public static string Reference(string relative) => Path.Combine(Root, "reference", relative);

    /// <summary>The repository root (the folder holding Workbook.sln).</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "Workbook.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Cannot find Workbook.sln above " + AppContext.BaseDirectory);
    }

    static string FindRoot()
    {
        var candidates = new List<string>();
        string? env = Environment.GetEnvironmentVariable("WORKBOOK_SHARED");
        if (!string.IsNullOrEmpty(env)) candidates.Add(env);
        candidates.Add(Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared")));
        candidates.Add("/work/shared");
        foreach (var c in candidates)
            if (Directory.Exists(Path.Combine(c, "fixtures"))) return c;
        throw new InvalidOperationException(
            $"The shared reference files were not found (looked in {string.Join(", ", candidates)}). Set WORKBOOK_SHARED to the folder holding fixtures/.");
    }
}
