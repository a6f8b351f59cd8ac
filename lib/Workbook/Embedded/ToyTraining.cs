using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using Workbook.Model;
using Workbook.Util;
using static TorchSharp.torch;

namespace Workbook.Embedded;

/// <summary>The optimiser schedule of a toy model's training run (every toy model trains the same way).</summary>
/// <param name="Seed">Seeds the weight initialisation; the data stream is seeded from it too (see <see cref="ToyTraining.Run"/>).</param>
/// <param name="Threads">CPU threads. One thread makes float reductions, and therefore the weights, reproducible.</param>
/// <param name="StopAfter">Run only the first this-many steps of the schedule (null: all): a prefix of the full run, for tests.</param>
public sealed record ToyOptimiser(ulong Seed, int Steps, double LearningRate, int WarmupSteps, double WeightDecay, int Threads, int? StopAfter = null);

/// <summary>Progress of a training run, reported every 100 steps and at the end.</summary>
public sealed record ToyTrainingProgress(int Step, int Steps, double Loss, double AnswerLoss, TimeSpan Elapsed);

/// <summary>
/// One training batch of next-token prediction: inputs [B, T], targets [B, T], a loss weight per target (0 for
/// padding) and a mask of the answer targets (for the reported answer loss).
/// </summary>
public sealed record ToyTrainingBatch(Tensor Inputs, Tensor Targets, Tensor Weights, Tensor AnswerMask);

/// <summary>
/// The training loop the toy models share: GPT-2's initialisation, AdamW with weight decay on matrices only, linear
/// warm-up then cosine decay to a tenth, gradient norm clipped at 1, next-token loss weighted per target. Deterministic
/// for a given seed and thread count: the run sets libtorch's thread count for its duration and draws everything from
/// seeded generators.
/// </summary>
public static class ToyTraining
{
    /// <summary>
    /// Trains <paramref name="model"/> in place for <see cref="ToyOptimiser.Steps"/> steps; <paramref name="batch"/> makes
    /// the batch of each step from a seed drawn from a stream seeded with <c>Seed ^ 0x5EEDDA7A</c>. The model is
    /// initialised first and comes back frozen (no gradients).
    /// </summary>
    public static void Run(HookedTransformer model, ToyOptimiser o, Func<ulong, ToyTrainingBatch> batch, IProgress<ToyTrainingProgress>? progress = null, CancellationToken cancel = default)
    {
        if (o.Steps < 0) throw new ArgumentException("Steps must not be negative.");
        if (o.LearningRate <= 0) throw new ArgumentException("Learning rate must be positive.");
        if (o.Threads < 1) throw new ArgumentException("Threads must be at least 1.");
        if (o.StopAfter is < 0) throw new ArgumentException("StopAfter must not be negative.");
        int previousThreads = torch.get_num_threads();
        torch.set_num_threads(o.Threads);
        try
        {
            Initialise(model, o.Seed);
            TrainSteps(model, o, batch, progress, cancel);
        }
        finally
        {
            torch.set_num_threads(previousThreads);
        }
    }

    /// <summary>
    /// The checks every toy recipe shares (each trainer's options add their own, such as the context a prompt needs):
    /// the optimiser's schedule and the model's shape, one clear message per problem, before anything is allocated.
    /// </summary>
    public static void ValidateRecipe(int steps, int batchSize, double learningRate, int warmupSteps, double weightDecay, int threads)
    {
        if (steps < 0) throw new ArgumentException($"Steps must not be negative, got {steps}.");
        if (batchSize < 1) throw new ArgumentException($"Batch size must be at least 1, got {batchSize}.");
        if (!(learningRate > 0) || !double.IsFinite(learningRate)) throw new ArgumentException($"Learning rate must be a positive number, got {learningRate}.");
        if (warmupSteps < 0) throw new ArgumentException($"Warm-up steps must not be negative, got {warmupSteps}.");
        if (!(weightDecay >= 0) || !double.IsFinite(weightDecay)) throw new ArgumentException($"Weight decay must be a non-negative number, got {weightDecay}.");
        if (threads < 1) throw new ArgumentException($"Threads must be at least 1, got {threads}.");
    }

    /// <summary>The shape checks of <see cref="ValidateRecipe"/>'s companions: heads divide d_model; <paramref name="dMlp"/> null for attention-only models.</summary>
    public static void ValidateShape(int layers, int dModel, int heads, int? dMlp = null)
    {
        if (layers < 1 || dModel < 1 || heads < 1 || dModel % heads != 0 || dMlp is < 1)
            throw new ArgumentException($"Model shape is invalid: {layers} layers, d_model {dModel}, {heads} heads (must divide d_model){(dMlp is int m ? $", d_mlp {m}" : "")}.");
    }

    /// <summary>GPT-2's initialisation: N(0, 0.02) weights, output projections scaled by 1/sqrt(2·layers), zero biases, unit LayerNorm gains.</summary>
    static void Initialise(HookedTransformer model, ulong seed)
    {
        using var generator = new Generator(seed);
        double std = 0.02, outStd = 0.02 / Math.Sqrt(2 * model.Config.NLayers);
        using var _ = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.EndsWith(".W_O", StringComparison.Ordinal) || name.EndsWith(".W_out", StringComparison.Ordinal)) p.normal_(0, outStd, generator);
            else if (name.Contains(".W_", StringComparison.Ordinal) || name.StartsWith("embed.", StringComparison.Ordinal) || name.StartsWith("pos_embed.", StringComparison.Ordinal)) p.normal_(0, std, generator);
            else if (name.EndsWith(".w", StringComparison.Ordinal)) p.fill_(1.0);
            else p.zero_();
        }
    }

    static void TrainSteps(HookedTransformer model, ToyOptimiser o, Func<ulong, ToyTrainingBatch> makeBatch, IProgress<ToyTrainingProgress>? progress, CancellationToken cancel)
    {
        // No unembedding bias (GPT-2 has none; the attention-only toys keep theirs at zero): keep b_U out of the optimiser.
        var trainable = model.named_parameters().Where(p => p.name != "unembed.b_U").Select(p => p.parameter).ToList();
        foreach (var p in trainable) p.requires_grad = true;
        var decayed = model.named_parameters().Where(p => p.name != "unembed.b_U" && p.parameter.dim() >= 2).Select(p => p.parameter).ToList();
        var notDecayed = trainable.Except(decayed).ToList();
        using var optimizer = optim.AdamW(new[]
        {
            new AdamW.ParamGroup(decayed, new AdamW.Options { weight_decay = o.WeightDecay }),
            new AdamW.ParamGroup(notDecayed, new AdamW.Options { weight_decay = 0.0 }),
        }, lr: o.LearningRate, beta1: 0.9, beta2: 0.99);

        var data = new SeededRandom(o.Seed ^ 0x5EED_DA7AUL);
        var clock = Stopwatch.StartNew();
        double lossSum = 0, answerSum = 0;
        int since = 0;
        try
        {
            int last = Math.Min(o.Steps, o.StopAfter ?? o.Steps);
            for (int step = 0; step < last; step++)
            {
                cancel.ThrowIfCancellationRequested();
                double lr = LearningRateAt(step, o);
                foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
                using var scope = NewDisposeScope();
                var batch = makeBatch(data.NextUInt64());
                var logits = model.Forward(batch.Inputs);                                   // [B, T, V]
                var nll = -logits.log_softmax(-1).gather(-1, batch.Targets.unsqueeze(-1)).squeeze(-1);
                var loss = (nll * batch.Weights).sum() / batch.Weights.sum();
                var answerLoss = (nll * batch.AnswerMask).sum() / batch.AnswerMask.sum();
                optimizer.zero_grad();
                loss.backward();
                nn.utils.clip_grad_norm_(trainable, 1.0);
                optimizer.step();
                lossSum += loss.item<float>();
                answerSum += answerLoss.item<float>();
                since++;
                if (progress != null && (since == 100 || step == last - 1))
                {
                    progress.Report(new ToyTrainingProgress(step + 1, o.Steps, lossSum / since, answerSum / since, clock.Elapsed));
                    lossSum = answerSum = 0;
                    since = 0;
                }
            }
        }
        finally
        {
            foreach (var p in model.parameters()) p.requires_grad = false;
        }
    }

    /// <summary>Linear warm-up, then cosine decay to a tenth of the peak.</summary>
    static double LearningRateAt(int step, ToyOptimiser o)
    {
        if (step < o.WarmupSteps) return o.LearningRate * (step + 1) / o.WarmupSteps;
        double progress = o.Steps <= o.WarmupSteps ? 1 : (double)(step - o.WarmupSteps) / (o.Steps - o.WarmupSteps);
        return o.LearningRate * (0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * progress)));
    }

    /// <summary>
    /// Full sequences (prompt followed by its answer), right-padded with <paramref name="pad"/>: inputs are tokens
    /// 0..n-2, targets 1..n-1; every target weighs 1 except the answer (the last token), which weighs
    /// <paramref name="answerWeight"/>, and padding, which weighs 0 (with causal attention it cannot affect the real positions).
    /// <paramref name="weightOf"/> (optional) overrides the weight of target position t of sequence b.
    /// </summary>
    public static ToyTrainingBatch Batch(IReadOnlyList<int[]> sequences, int pad, double answerWeight, Func<int, int, float?>? weightOf = null)
    {
        int size = sequences.Count;
        int T = sequences.Max(s => s.Length) - 1;
        var inputs = new long[size * T];
        var targets = new long[size * T];
        var weights = new float[size * T];
        var answer = new float[size * T];
        Array.Fill(inputs, pad);
        Array.Fill(targets, pad);
        for (int b = 0; b < size; b++)
        {
            var sentence = sequences[b];
            for (int t = 0; t < sentence.Length - 1; t++)
            {
                inputs[b * T + t] = sentence[t];
                targets[b * T + t] = sentence[t + 1];
                weights[b * T + t] = weightOf?.Invoke(b, t) ?? 1;
            }
            int last = b * T + sentence.Length - 2;
            weights[last] = (float)answerWeight;
            answer[last] = 1;
        }
        return new ToyTrainingBatch(tensor(inputs).view(size, T), tensor(targets).view(size, T), tensor(weights).view(size, T), tensor(answer).view(size, T));
    }
}
