using System.CommandLine;
using System.Text.Json;
using Workbook.Checkpoints;
using Workbook.Model;
using Workbook.Patching;
using static TorchSharp.torch;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook patch</c>: computes every scenario of a scenario file from its tokens, patch kind and edges.</summary>
public static class PatchCommand
{
    public static Command Build()
    {
        var model = CommonOptions.Model();
        var device = CommonOptions.Device();
        var tf32 = CommonOptions.AllowTf32();
        var scenarios = new Option<string>("--scenarios") { Description = "Scenario file (format of the reference fixtures).", Required = true };
        var outFile = new Option<string>("--out") { Description = "Where to write {\"scenarios\":[{\"name\":..., \"logits\":[batch][seq][vocab]}]}.", Required = true };
        var cmd = new Command("patch", "Run edge-patching scenarios and write their logits.") { model, scenarios, outFile, device, tf32 };
        cmd.SetAction(parse =>
        {
            Devices.AllowTf32 = parse.GetValue(tf32);
            var file = ScenarioFile.Read(parse.GetValue(scenarios)!);
            using var m = ModelLoader.Load(parse.GetValue(model)!, new LoadOptions { Device = parse.GetValue(device)! });
            var graph = file.GraphFor(m.Config);
            var results = new List<(string Name, float[] Logits, long[] Shape)>();
            foreach (var s in file.Scenarios)
            {
                using var scope = NewDisposeScope();
                var logits = file.Run(m, s, graph).cpu().contiguous();
                results.Add((s.Name, logits.data<float>().ToArray(), logits.shape));
                parse.InvocationConfiguration.Error.WriteLine($"patched {Util.ControlCharacters.Escape(s.Name)} ({s.Edges.Count} edge entries)");
            }
            WriteResults(parse.GetValue(outFile)!, results);
            return 0;
        });
        return cmd;
    }

    /// <summary>Writes the logits JSON atomically (<see cref="Util.AtomicFile"/>), so a failure leaves no partial file.</summary>
    static void WriteResults(string path, List<(string Name, float[] Logits, long[] Shape)> results)
    {
        Util.AtomicFile.Write(path, stream =>
        {
            using (var w = new Utf8JsonWriter(stream))
            {
                w.WriteStartObject();
                w.WriteStartArray("scenarios");
                foreach (var (name, logits, shape) in results)
                {
                    w.WriteStartObject();
                    w.WriteString("name", name);
                    w.WriteStartArray("logits");
                    int k = 0;
                    for (long b = 0; b < shape[0]; b++)
                    {
                        w.WriteStartArray();
                        for (long t = 0; t < shape[1]; t++)
                        {
                            w.WriteStartArray();
                            for (long v = 0; v < shape[2]; v++) w.WriteNumberValue(logits[k++]);
                            w.WriteEndArray();
                        }
                        w.WriteEndArray();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
        });
    }
}
