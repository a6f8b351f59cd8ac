using System.Globalization;
using System.Text;
using Workbook.Checkpoints;
using Workbook.Discovery;
using Workbook.Embedded;
using Workbook.Tasks;
using Xunit.Abstractions;

namespace Workbook.Tests.Discovery;

/// <summary>
/// Discovery on the embedded toy IOI model, compared with the heads its model card lists (data/models/toy-ioi/README.md:
/// A0.0, A1.0, A1.3, found by mean-ablating each head). The fast test checks the card's dominant head (A0.0: ablating it
/// removes the whole logit difference) comes first; WORKBOOK_FULL_DISCOVERY=1 runs every algorithm and search and prints
/// the comparison table of the README.
/// </summary>
public class ToyIoiDiscoveryTests(ITestOutputHelper output)
{
    static readonly Lazy<LoadedModel> Toy = new(() => ModelLoader.LoadWithTokenizer(ToyIoi.Alias));

    static IReadOnlyList<TokenizedDataset> Parts(int prompts) =>
        KnownTasks.Ioi.Tokenize(KnownTasks.Ioi.GenerateForEvaluation(Toy.Value.Tokenizer, 0, prompts), Toy.Value.Tokenizer);

    static DiscoveryResult Discover(DiscoveryAlgorithm algorithm, SearchSpace search, int prompts, int epochs = 100, AcdcOptions? acdc = null) =>
        CircuitDiscovery.Run(new DiscoveryRequest
        {
            Model = Toy.Value.Model, Task = KnownTasks.Ioi, Parts = Parts(prompts), Algorithm = algorithm, Search = search, Threads = 1,
            SubnetworkProbing = new SubnetworkProbingOptions { Epochs = epochs }, Acdc = acdc ?? new AcdcOptions(),
        });

    [Fact]
    public void AttributionRanksTheCardsDominantHeadFirst()
    {
        Assert.Contains(ToyIoi.Circuit, h => h.Name == "A0.0");
        foreach (var search in new[] { SearchSpace.Node, SearchSpace.Edge })
        {
            var ranked = HeadRanking.Rank(Discover(DiscoveryAlgorithm.Eap, search, prompts: 4));
            Assert.Equal(12, ranked.Count);
            Assert.Equal("A0.0", ranked[0].Head);
        }
    }

    [SkippableFact]
    public void CompareEveryAlgorithmWithTheModelCard()
    {
        Skip.IfNot(Environment.GetEnvironmentVariable("WORKBOOK_FULL_DISCOVERY") == "1", "Set WORKBOOK_FULL_DISCOVERY=1 to run every algorithm on toy-ioi (several minutes).");
        var card = ToyIoi.Circuit.Select(h => h.Name).ToHashSet();
        var table = new StringBuilder();
        table.AppendLine($"| algorithm | search | prompts | top {card.Count} heads | overlap with the card | ranks of {string.Join(", ", card.Order())} | seconds |");
        table.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var search in new[] { SearchSpace.Node, SearchSpace.Edge })
            foreach (var algorithm in DiscoveryNames.AllAlgorithms)
            {
                // ACDC's edge search runs 120 thresholds over 262 edges and 30 prompt lengths: fewer prompts keep it to minutes.
                int prompts = algorithm == DiscoveryAlgorithm.Acdc && search == SearchSpace.Edge ? 5 : 20;
                var clock = System.Diagnostics.Stopwatch.StartNew();
                var result = Discover(algorithm, search, prompts);
                var ranked = HeadRanking.Rank(result);
                var top = ranked.Take(card.Count).ToList();
                // Heads ACDC never removed tie at +∞; list them all.
                if (algorithm == DiscoveryAlgorithm.Acdc) top = ranked.Where(h => double.IsPositiveInfinity(h.Importance)).DefaultIfEmpty(ranked[0]).ToList();
                string ranks = string.Join(", ", card.Order().Select(c => (ranked.ToList().FindIndex(h => h.Head == c) + 1).ToString(CultureInfo.InvariantCulture)));
                table.AppendLine($"| {algorithm.Name()} | {search.Name()} | {result.Scores.Info.Prompts} | {string.Join(", ", top.Select(h => h.Head))}" +
                    $"{(algorithm == DiscoveryAlgorithm.Acdc ? " (never removed)" : "")} | {top.Count(h => card.Contains(h.Head))} of {card.Count} | {ranks} | {clock.Elapsed.TotalSeconds:F0} |");
            }
        output.WriteLine(table.ToString());
    }
}
