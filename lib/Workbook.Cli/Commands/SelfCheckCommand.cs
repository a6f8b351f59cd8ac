using System.CommandLine;
using System.Globalization;
using Workbook.Checkpoints;
using Workbook.Diagnostics;
using Workbook.Model;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook selfcheck</c>: the model's and the patching engine's identities on a device (see <see cref="SelfCheck"/>).</summary>
public static class SelfCheckCommand
{
    public sealed record Output(string Model, string Device, string DeviceName, bool AllowTf32, string? Reference, bool Passed, IReadOnlyList<CheckResult> Checks);

    public static Command Build()
    {
        var model = CommonOptions.Model();
        var device = CommonOptions.Device();
        var tf32 = CommonOptions.AllowTf32();
        var json = CommonOptions.Json();
        var scenarios = new Option<string?>("--scenarios")
        {
            Description = "Scenario file whose unpatched scenario gives the prompts and reference logits (default: <model folder>-scenarios.json when it exists; otherwise random prompts and no reference check).",
        };
        var checks = new Option<string?>("--checks") { Description = $"Comma-separated checks to run (default all): {string.Join(", ", SelfCheck.CheckNames)}." };
        var cmd = new Command("selfcheck", "Check the model's and the patching engine's identities on a device; prints PASS/FAIL per check with the largest difference, exit code 1 on any failure.")
        {
            model, scenarios, checks, device, tf32, json,
        };
        cmd.SetAction(parse =>
        {
            Devices.AllowTf32 = parse.GetValue(tf32);
            string folder = parse.GetValue(model)!;
            string deviceName = parse.GetValue(device)!;
            var only = parse.GetValue(checks)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (only is { Length: 0 }) throw new ArgumentException("--checks must name at least one check.");
            var unknown = only?.Except(SelfCheck.CheckNames).ToList();
            if (unknown is { Count: > 0 })
                throw new ArgumentException($"--checks: unknown check {string.Join(", ", unknown)}; known: {string.Join(", ", SelfCheck.CheckNames)}.");
            string? scenarioPath = parse.GetValue(scenarios) ?? DefaultScenarios(folder);
            bool asJson = parse.GetValue(json);
            var output = parse.InvocationConfiguration.Output;
            var log = asJson ? parse.InvocationConfiguration.Error : output;

            using var m = ModelLoader.Load(folder, new LoadOptions { Device = deviceName });
            var reference = scenarioPath is null ? null : ReferenceRun.FromScenarioFile(scenarioPath, m.Device);
            string hardware = Devices.Describe(m.Device);
            log.WriteLine($"selfcheck: {m.Config.Name} on {deviceName} ({hardware}), {(reference is null ? "random prompts, no reference logits" : $"prompts and reference from {Util.ControlCharacters.Escape(scenarioPath)}")}");
            var results = SelfCheck.Run(m, reference, only, r => log.WriteLine(Format(r)));
            bool passed = results.All(r => r.Outcome != CheckOutcome.Fail);
            int failures = results.Count(r => r.Outcome == CheckOutcome.Fail);
            log.WriteLine(passed ? $"selfcheck: all {results.Count(r => r.Outcome == CheckOutcome.Pass)} checks passed" : $"selfcheck: {failures} of {results.Count} checks FAILED");
            if (asJson)
                CommonOptions.WriteJson(output, new Output(m.Config.Name, deviceName, hardware, Devices.AllowTf32, scenarioPath, passed, results));
            return passed ? 0 : CliErrors.Failure;
        });
        return cmd;
    }

    static string? DefaultScenarios(string folder)
    {
        string candidate = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)) + "-scenarios.json";
        return File.Exists(candidate) ? candidate : null;
    }

    public static string Format(CheckResult r)
    {
        string verdict = r.Outcome switch { CheckOutcome.Pass => "PASS", CheckOutcome.Fail => "FAIL", _ => "SKIP" };
        string diff = r.MaxDifference is double d ? $"max diff {d.ToString("0.00E+00", CultureInfo.InvariantCulture),9} (tol {r.Tolerance.ToString("0E+00", CultureInfo.InvariantCulture)})" : new string(' ', 30);
        return $"{verdict}  {r.Name,-24} {diff}  {r.Detail}";
    }
}
