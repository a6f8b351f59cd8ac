using System.Diagnostics;

namespace Workbook.Figures;

/// <summary>
/// Headless Chromium, used to turn an HTML page (a report or one figure) into a PNG, or to read the DOM after its
/// scripts ran. Found as <c>$WORKBOOK_CHROMIUM</c>, else <c>chromium</c>, <c>chromium-browser</c>,
/// <c>google-chrome</c> on the PATH (Debian: <c>apt-get install chromium</c>).
/// </summary>
public static class Chromium
{
    static readonly string[] Candidates = { "chromium", "chromium-browser", "google-chrome", "google-chrome-stable" };

    /// <summary>The browser's path, or null when none is installed.</summary>
    public static string? Find()
    {
        if (Environment.GetEnvironmentVariable("WORKBOOK_CHROMIUM") is { Length: > 0 } configured)
            return File.Exists(configured) ? configured : null;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            foreach (var name in Candidates)
            {
                string path = Path.Combine(dir, name);
                if (File.Exists(path)) return path;
            }
        return null;
    }

    static string Require() => Find() ?? throw new InvalidOperationException(
        "No Chromium was found (looked for $WORKBOOK_CHROMIUM, chromium, chromium-browser, google-chrome on the PATH). " +
        "Install one (Debian/Ubuntu: apt-get install chromium) to export PNGs.");

    /// <summary>Renders <paramref name="htmlPath"/> at the given window size into <paramref name="pngPath"/>.</summary>
    public static void Screenshot(string htmlPath, string pngPath, int width = 1200, int height = 800, TimeSpan? timeout = null)
    {
        string full = Path.GetFullPath(pngPath);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = Util.AtomicFile.TempName(full) + ".png"; // unpredictable: Chromium writes it without our checks
        Run(new[] { $"--screenshot={tmp}", $"--window-size={width},{height}" }, htmlPath, timeout);
        if (!File.Exists(tmp)) throw new InvalidOperationException($"Chromium wrote no screenshot of {htmlPath}.");
        File.Move(tmp, full, overwrite: true);
    }

    /// <summary>The page's DOM after its scripts ran (plotly draws SVG elements such as <c>class="main-svg"</c>).</summary>
    public static string DumpDom(string htmlPath, TimeSpan? timeout = null) =>
        Run(new[] { "--dump-dom" }, htmlPath, timeout);

    /// <summary>Writes <paramref name="figure"/> as a PNG (through a temporary page with plotly.js inline).</summary>
    public static void SavePng(Figure figure, string pngPath, int width = 1100, int? height = null)
    {
        string page = Path.Combine(Path.GetTempPath(), $"workbook-figure-{Environment.ProcessId}-{Guid.NewGuid():N}.html");
        try
        {
            using (var f = new StreamWriter(Util.AtomicFile.CreateExclusive(page))) f.Write(FigureHtml.Page(figure.Layout.Title?.Text ?? "figure", new[] { figure }));
            Screenshot(page, pngPath, width, height ?? (int)(figure.Layout.Height ?? 450) + 80);
        }
        finally
        {
            File.Delete(page);
        }
    }

    static string Run(IEnumerable<string> extra, string htmlPath, TimeSpan? timeout)
    {
        string browser = Require();
        string profile = Path.Combine(Path.GetTempPath(), $"workbook-chromium-{Environment.ProcessId}-{Guid.NewGuid():N}");
        var info = new ProcessStartInfo(browser)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--virtual-time-budget=5000", $"--user-data-dir={profile}",
                 }.Concat(extra))
            info.ArgumentList.Add(a);
        info.ArgumentList.Add(new Uri(Path.GetFullPath(htmlPath)).AbsoluteUri);
        try
        {
            using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {browser}.");
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"Chromium did not finish rendering {htmlPath} in time.");
            }
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"Chromium exited with code {process.ExitCode} on {htmlPath}: {stderr.Result.Trim()}");
            return stdout.Result;
        }
        finally
        {
            try { Directory.Delete(profile, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
