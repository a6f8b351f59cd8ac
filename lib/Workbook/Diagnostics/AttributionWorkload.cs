using TorchSharp;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using static TorchSharp.torch;

namespace Workbook.Diagnostics;

/// <summary>
/// The edge-attribution benchmark's workload: a model of GPT-2 small's shape with random weights (as
/// <see cref="PatchingWorkload"/>), random clean and corrupt batches, and a logit-difference loss at the last position
/// between two random tokens per prompt. <see cref="ForwardBackward"/> is the yardstick (one forward pass and one
/// backward pass through every layer); <see cref="Attribution"/> scores every edge of the factorized graph (32,491 for
/// GPT-2 small) with resample patch values, the corrupt forward included.
/// </summary>
public sealed class AttributionWorkload : IDisposable
{
    public HookedTransformer Model { get; }
    public ComputationGraph Graph { get; }
    public Tensor Clean { get; }
    public Tensor Corrupt { get; }
    /// <summary>[B, 2]: the answer and the wrong answer of each prompt.</summary>
    public Tensor Answers { get; }

    AttributionWorkload(HookedTransformer model, ComputationGraph graph, Tensor clean, Tensor corrupt, Tensor answers) =>
        (Model, Graph, Clean, Corrupt, Answers) = (model, graph, clean, corrupt, answers);

    public static AttributionWorkload Create(int batch, int seq = 16, Device? device = null, TransformerConfig? config = null, int seed = 0)
    {
        config ??= KnownConfigs.Gpt2SmallShape;
        if (batch < 1) throw new ArgumentException($"The batch must hold at least one prompt; got {batch}.");
        if (seq < 1 || seq > config.NCtx) throw new ArgumentException($"The sequence length must be within 1..{config.NCtx}; got {seq}.");
        device ??= CPU;
        var model = PatchingWorkload.RandomModel(config, device, seed);
        var clean = PatchingWorkload.RandomTokens(batch, seq, config.DVocab, seed + 1, device).DetachFromDisposeScope();
        var corrupt = PatchingWorkload.RandomTokens(batch, seq, config.DVocab, seed + 2, device).DetachFromDisposeScope();
        var answers = PatchingWorkload.RandomTokens(batch, 2, config.OutputVocab, seed + 3, device).DetachFromDisposeScope();
        return new AttributionWorkload(model, ComputationGraph.Factorized(model.Config), clean, corrupt, answers);
    }

    /// <summary>Per prompt: −(logit[answer] − logit[wrong answer]) at the last position, [B].</summary>
    public Tensor Loss(Tensor logits)
    {
        var last = logits.select(1, -1);
        return last.gather(1, Answers.narrow(1, 1, 1)).squeeze(1) - last.gather(1, Answers.narrow(1, 0, 1)).squeeze(1);
    }

    /// <summary>
    /// The yardstick: a forward pass of the clean batch and a backward pass of the loss to the embeddings (the weights need
    /// no gradient, as in attribution). Returns the loss.
    /// </summary>
    public double ForwardBackward()
    {
        using var scope = NewDisposeScope();
        using var grad = enable_grad();
        Tensor? leaf = null;
        var hooks = new HookSet().Replace(HookNames.Embed.Name, x => leaf = x.detach().requires_grad_(true).MoveToOuterDisposeScope());
        var loss = Loss(Model.Forward(Clean, hooks)).sum();
        loss.backward();
        if (leaf?.grad is null) throw new InvalidOperationException("The backward pass did not reach the embeddings.");
        return loss.item<float>();
    }

    /// <summary>Edge attribution patching over every edge: resample values from the corrupt batch, then one forward and one backward pass.</summary>
    public EdgeGradients Attribution(bool perPrompt = false)
    {
        using var scope = NewDisposeScope();
        var values = PatchValues.Compute(Model, Graph, AblationValue.Resample, PatchDirection.AblateClean, new PromptPair(Clean, Corrupt));
        return EdgeAttribution.Compute(Model, Graph, values, Clean, Loss, perPrompt: perPrompt);
    }

    public void Dispose()
    {
        Clean.Dispose();
        Corrupt.Dispose();
        Answers.Dispose();
        Model.Dispose();
    }
}
