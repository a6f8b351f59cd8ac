using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Workbook.Tests.Support;

namespace Workbook.Tests.Repository;

/// <summary>A clone stands on its own: its fixtures are the recorded files, and nothing in it names one machine's paths.</summary>
public class RepositoryTests
{
    [Fact]
    public void FixturesAreTheRecordedFilesAndEveryFixtureIsRecorded()
    {
        // SHA256SUMS was written from the team's original copies when the fixtures moved into the repository: a fixture
        // that is regenerated (say, from the workbook's own output) or edited no longer matches.
        var listed = File.ReadAllLines(TestFiles.Fixture("SHA256SUMS")).Where(l => l.Length > 0)
            .Select(l => Regex.Match(l, @"^([0-9a-f]{64})  (.+)$")).ToList();
        Assert.All(listed, m => Assert.True(m.Success, "a SHA256SUMS line is not '<sha256>  <path>'"));
        foreach (var m in listed)
        {
            string path = TestFiles.Fixture(m.Groups[2].Value);
            Assert.True(File.Exists(path), $"{m.Groups[2].Value} is listed in tests/fixtures/SHA256SUMS but missing");
            string actual = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
            Assert.True(actual == m.Groups[1].Value, $"{m.Groups[2].Value} changed: sha256 {actual}, recorded {m.Groups[1].Value}");
        }
        var recorded = listed.Select(m => m.Groups[2].Value).ToHashSet();
        var unrecorded = Directory.EnumerateFiles(TestFiles.Fixtures, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(TestFiles.Fixtures, f).Replace('\\', '/'))
            .Where(f => f is not ("README.md" or "SHA256SUMS") && !recorded.Contains(f)).ToList();
        Assert.True(unrecorded.Count == 0, "fixtures without a line in SHA256SUMS: " + string.Join(", ", unrecorded));
    }

    // Folders that hold build output, downloads or run results, not the repository's own text.
    static readonly string[] Generated = { ".git", "bin", "obj", "artifacts", "report", "node_modules", "TestResults", "BenchmarkDotNet.Artifacts", "gpu-bundle", "out" };

    // Home folders and this project's development machines' layout, and Windows user folders. (The brackets keep this
    // line from matching itself.)
    static readonly Regex MachinePath = new(@"(?<![\w.])(/wor[k]/|/roo[t]/|/hom[e]/[a-z]|/User[s]/[A-Za-z]|[A-Za-z]:\\User[s]\\)", RegexOptions.Compiled);

    [Fact]
    public void NoFileNamesAPathOfOneMachine()
    {
        var offending = new List<string>();
        foreach (var file in RepositoryFiles(TestFiles.RepoRoot))
        {
            string relative = Path.GetRelativePath(TestFiles.RepoRoot, file).Replace('\\', '/');
            // Logs of past GPU runs are records of that machine, kept as evidence; the paper reference is a verbatim copy.
            if (relative.StartsWith("scripts/gpu/results/", StringComparison.Ordinal) || relative == "tests/fixtures/paper-reference.md") continue;
            int lineNumber = 0;
            foreach (var line in File.ReadLines(file))
            {
                lineNumber++;
                if (MachinePath.IsMatch(line)) offending.Add($"{relative}:{lineNumber}: {line.Trim()}");
            }
        }
        Assert.True(offending.Count == 0, "machine-specific paths:\n" + string.Join("\n", offending.Take(20)));
    }

    [Fact]
    public void OnlyTestFilesLooksOutsideTheRepository()
    {
        // Every test reaches reference files through TestFiles, so a stranger's clone needs nothing beside it.
        string tests = Path.Combine(TestFiles.RepoRoot, "tests", "Workbook.Tests");
        var offending = RepositoryFiles(tests).Where(f => f.EndsWith(".cs", StringComparison.Ordinal) && Path.GetFileName(f) is not ("TestFiles.cs" or "RepositoryTests.cs"))
            .Where(f => File.ReadAllText(f).Contains("\"shared\"", StringComparison.Ordinal) || File.ReadAllText(f).Contains("../shared", StringComparison.Ordinal))
            .Select(f => Path.GetRelativePath(TestFiles.RepoRoot, f)).ToList();
        Assert.True(offending.Count == 0, "tests naming a folder outside the repository: " + string.Join(", ", offending));
    }

    static readonly HashSet<string> TextExtensions = new(StringComparer.OrdinalIgnoreCase)
    { ".cs", ".csproj", ".props", ".targets", ".sln", ".json", ".md", ".dib", ".sh", ".py", ".csx", ".txt", ".yml", ".yaml", "" };

    static IEnumerable<string> RepositoryFiles(string root)
    {
        var pending = new Stack<string>(new[] { root });
        while (pending.Count > 0)
        {
            string dir = pending.Pop();
            foreach (var sub in Directory.EnumerateDirectories(dir))
            {
                var info = new DirectoryInfo(sub);
                if (info.LinkTarget is null && !Generated.Contains(info.Name)) pending.Push(sub);
            }
            foreach (var file in Directory.EnumerateFiles(dir))
                if (TextExtensions.Contains(Path.GetExtension(file)) && new FileInfo(file).Length < 4 << 20) yield return file;
        }
    }
}
