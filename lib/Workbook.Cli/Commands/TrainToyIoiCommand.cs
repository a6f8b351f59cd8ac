using System.CommandLine;
using Workbook.Embedded;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook train-toy-ioi</c>: trains the toy IOI model and writes its checkpoint folder and model card.</summary>
public static class TrainToyIoiCommand
{
    public static Command Build()
    {
        var defaults = new ToyIoiTrainingOptions();
        var output = new Option<string>("--out") { Description = "Folder to write (replaced when complete).", DefaultValueFactory = _ => ToyIoi.RepositoryFolder };
        var steps = new Option<int>("--steps") { Description = "Training steps.", DefaultValueFactory = _ => defaults.Steps }.Within(1, OptionLimits.MaxSteps);
        var seed = new Option<ulong>("--seed") { Description = "Seed of the initialisation and of the training sentences.", DefaultValueFactory = _ => defaults.Seed };
        var threads = new Option<int>("--threads") { Description = "CPU threads (1 makes the weights reproducible).", DefaultValueFactory = _ => defaults.Threads }
            .Within(1, OptionLimits.MaxThreads, $"this machine has {OptionLimits.MaxThreads} processors");
        var analyseOnly = new Option<bool>("--analyse-only") { Description = "Keep the weights in --out and only redo the evaluation, head analysis and model card." };
        var cmd = new Command("train-toy-ioi", "Train the toy IOI model from scratch on IOI sentences and write its checkpoint, tokenizer, circuit and model card.")
        {
            output, steps, seed, threads, analyseOnly,
        };
        cmd.SetAction(parse =>
        {
            var options = defaults with { Steps = parse.GetValue(steps), Seed = parse.GetValue(seed), Threads = parse.GetValue(threads) };
            var log = parse.InvocationConfiguration.Output;
            if (parse.GetValue(analyseOnly)) ToyIoiBuild.Reanalyse(parse.GetValue(output)!, new LineProgress(log));
            else ToyIoiBuild.TrainAndSave(parse.GetValue(output)!, options, new LineProgress(log));
            return 0;
        });
        return cmd;
    }

    sealed class LineProgress(TextWriter writer) : IProgress<string>
    {
        public void Report(string value)
        {
            writer.WriteLine(Util.ControlCharacters.Escape(value));
            writer.Flush();
        }
    }
}
