namespace Workbook.Graph;

/// <summary>What a node of the computation graph stands for.</summary>
public enum NodeKind
{
    /// <summary>The embedding entering block 0 (source only).</summary>
    ResidStart,
    /// <summary>One attention head: its output z·W_O as a source, its input(s) as a destination.</summary>
    Head,
    /// <summary>One MLP: its output as a source, its input as a destination.</summary>
    Mlp,
    /// <summary>The residual entering the final LayerNorm (destination only).</summary>
    ResidEnd,
    /// <summary>Residual view: resid_mid of a block.</summary>
    ResidMid,
    /// <summary>Residual view: the output of a block, feeding the next one.</summary>
    ResidPost,
}

/// <summary>Which input of an attention head a destination is. <see cref="All"/> when Q, K and V are not separated.</summary>
public enum HeadInput { None, Q, K, V, All }

/// <summary>The two views of a model as a graph.</summary>
public enum GraphView
{
    /// <summary>Edge view: every source writes to the residual stream and every destination reads its own copy (AutoCircuit's factorized graph).</summary>
    Factorized,
    /// <summary>Node view: only consecutive nodes are connected; ablating a head's single out-edge is node ablation.</summary>
    Residual,
}

/// <summary>A node that writes into the residual stream. <see cref="Index"/> is its position in <see cref="ComputationGraph.Sources"/>.</summary>
public sealed record SourceNode(string Name, int Index, NodeKind Kind, int Layer, int Block, int Head)
{
    public override string ToString() => Name;
}

/// <summary>A node that reads the residual stream. <see cref="Index"/> is its position in <see cref="ComputationGraph.Destinations"/>.</summary>
public sealed record DestinationNode(string Name, int Index, NodeKind Kind, int Layer, int Block, int Head, HeadInput Input)
{
    /// <summary>Indices (into Sources) of the sources feeding this destination: a contiguous range.</summary>
    public int FirstSource { get; init; }
    public int SourceCount { get; init; }

    public override string ToString() => Name;
}

/// <summary>A directed edge; <see cref="Index"/> is its position in <see cref="ComputationGraph.Edges"/>.</summary>
public sealed record Edge(SourceNode Source, DestinationNode Destination, int Index)
{
    public string Name => $"{Source.Name}->{Destination.Name}";
    public override string ToString() => Name;
}
