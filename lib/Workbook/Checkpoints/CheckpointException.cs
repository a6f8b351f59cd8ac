namespace Workbook.Checkpoints;

/// <summary>A checkpoint, config or weight file that cannot be used, with a message naming the file and the problem.</summary>
public sealed class CheckpointException : Exception
{
    public CheckpointException(string message) : base(message) { }
    public CheckpointException(string message, Exception? inner) : base(message, inner) { }
}
