using System.Text.Json;
using Workbook.Tests.Cli;

namespace Workbook.Tests.Curves;

/// <summary><c>workbook curve</c> end to end on the built-in Tracr model, and its refusals.</summary>
public class CurveCliTests
{
    [Fact]
    public void CurveDiscoversWithEapIgAndWritesCsvJsonAndHtml()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"workbook-curve-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            string csv = Path.Combine(dir, "c.csv"), json = Path.Combine(dir, "c.json"), html = Path.Combine(dir, "c.html");
            var r = CliRunner.Run("curve", "--model", "tracr-xproportion", "--task", "tracr-xproportion", "--algorithm", "eap-ig", "--ig-steps", "2",
                "--prompts", "30", "--points", "4", "--methodologies", "edge/resample", "--threads", "1", "--csv", csv, "--out", json, "--html", html);
            Assert.True(r.ExitCode == 0, r.Err);
            Assert.Contains("faithfulness curve 0/5 circuits", r.Err);  // progress: the empty circuit, then 4 sizes
            Assert.Contains("faithfulness curve 5/5 circuits (100%)", r.Err);
            var lines = File.ReadAllLines(csv);
            Assert.Equal(1 + 4, lines.Length);                               // header + one row per size
            Assert.StartsWith("edge/all/resample/ablate-clean/complement,mse,1,", lines[1]);
            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            var curve = doc.RootElement.GetProperty("curves")[0];
            Assert.Equal(1.0, curve.GetProperty("points")[3].GetProperty("faithfulness").GetDouble(), 9);   // every edge kept: the model
            Assert.Contains("window.Plotly.newPlot", File.ReadAllText(html));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("--grid", "cubic", "--grid must be log or mib")]
    [InlineData("--methodologies", "edge", "neither 'paper' nor component/ablation")]
    [InlineData("--points", "1", "--points")]
    public void BadOptionsFailWithAClearMessageBeforeAnyRun(string option, string value, string message)
    {
        var r = CliRunner.Run("curve", "--model", "tracr-xproportion", "--task", "tracr-xproportion", "--algorithm", "eap", option, value);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(message, r.Err);
    }
}
