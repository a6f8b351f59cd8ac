namespace Workbook.Tests.Support;

/// <summary>
/// Where tests find their reference files. The project's own fixtures (the tiny checkpoints, their patching scenarios
/// and the paper reference) live in the repository under <c>tests/fixtures</c>, so a bare clone tests itself.
/// AutoCircuit's original dataset files carry no licence that allows copying them here: tests that compare against
/// them read them from outside the repository (<see cref="AutoCircuitDataset"/>) and skip with a reason when absent.
/// </summary>
public static class TestFiles
{
    /// <summary>Names the folder holding AutoCircuit's dataset files (<c>docstring_prompts.json</c>, <c>ioi/</c>, ...); <c>off</c> disables the lookup.</summary>
    public const string AutoCircuitDatasetsVariable = "WORKBOOK_AUTOCIRCUIT_DATASETS";

    /// <summary>The xunit trait category of tests that need AutoCircuit's dataset files (CI runs them where present).</summary>
    public const string AutoCircuitCategory = "AutoCircuitReference";

    /// <summary>The repository root (the folder holding Workbook.sln).</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The project's own reference fixtures (see <c>tests/fixtures/README.md</c>).</summary>
    public static string Fixtures { get; } = Path.Combine(RepoRoot, "tests", "fixtures");

    public static string Fixture(string name) => Path.Combine(Fixtures, name);

    /// <summary>The team's paper reference (facts of the paper's experiments, checked numbers), kept with the fixtures.</summary>
    public static string PaperReference => Fixture("paper-reference.md");

    public static string ReadPaperReference() => File.ReadAllText(PaperReference);

    static readonly Lazy<string?> AutoCircuitRoot = new(FindAutoCircuitDatasets);

    /// <summary>
    /// The path of one of AutoCircuit's original dataset files (relative to its <c>datasets</c> folder), or a skip
    /// (callers are <c>[SkippableFact]</c>/<c>[SkippableTheory]</c>) that says how to provide them.
    /// </summary>
    public static string AutoCircuitDataset(string relative)
    {
        string? root = AutoCircuitRoot.Value;
        Skip.If(root is null, $"AutoCircuit's original dataset files are not available: set {AutoCircuitDatasetsVariable} to the folder " +
            "holding them (docstring_prompts.json, ioi/, sports-players/, tracr/) to compare the generators with them byte for byte.");
        string path = Path.Combine(root!, relative);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} is missing from {AutoCircuitDatasetsVariable}={root}.", path);
        return path;
    }

    static string? FindAutoCircuitDatasets()
    {
        string? named = Environment.GetEnvironmentVariable(AutoCircuitDatasetsVariable);
        if (string.Equals(named, "off", StringComparison.OrdinalIgnoreCase)) return null;
        if (!string.IsNullOrEmpty(named))
            return Directory.Exists(named) ? Path.GetFullPath(named)
                : throw new DirectoryNotFoundException($"{AutoCircuitDatasetsVariable}={named} is not a folder.");
        // The team's checkouts keep a `shared` folder beside the repository; a stranger's clone has none and skips.
        string beside = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "reference", "autocircuit-datasets"));
        return Directory.Exists(beside) ? beside : null;
    }

    static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "Workbook.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Cannot find Workbook.sln above " + AppContext.BaseDirectory);
    }
}
