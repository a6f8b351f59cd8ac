using System.CommandLine;
using Workbook.Circuits;
using Workbook.Graph;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook circuit [NAME]</c>: prints an official circuit (or lists them).</summary>
public static class CircuitCommand
{
    public static Command Build()
    {
        var name = new Argument<string?>("name")
        {
            Description = $"An official circuit: {string.Join(", ", OfficialCircuits.Names)}. Omit to list them.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var json = CommonOptions.Json();
        var cmd = new Command("circuit", "Print an official circuit as edges with position labels ({\"edges\":[{\"src\",\"dest\",\"position\"}]} with --json).")
        {
            name, json,
        };
        cmd.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            string? requested = parse.GetValue(name);
            if (requested is null)
            {
                foreach (var n in OfficialCircuits.Names)
                {
                    var c = OfficialCircuits.Get(n);
                    output.WriteLine($"{n,-26} {c.Circuit.Edges.Count,6} entries  {c.Task,-18} {c.Circuit.Description}");
                }
                return 0;
            }
            var official = OfficialCircuits.Families.TryGetValue(requested, out var family)
                ? throw new ArgumentException($"'{requested}' names both '{family.Nodes}' and '{family.Edges}'; print one of them.")
                : OfficialCircuits.Get(requested);
            if (parse.GetValue(json))
            {
                output.WriteLine(SymbolicCircuitJson.Write(official.Circuit));
                return 0;
            }
            var circuit = official.Circuit;
            output.WriteLine($"# {circuit.Name}: {circuit.Description}");
            output.WriteLine($"# task {official.Task}, model {official.Model.Name}, {(circuit.View == GraphView.Residual ? "residual (node) graph" : circuit.SeparateQkv ? "factorized graph, Q/K/V separate" : "factorized graph, heads not split")}; " +
                $"{circuit.Edges.Count} entries, {circuit.DistinctEdgeCount} distinct edges");
            foreach (var e in circuit.Edges) output.WriteLine(e.ToString());
            return 0;
        });
        return cmd;
    }
}
