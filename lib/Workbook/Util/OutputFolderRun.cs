namespace Workbook.Util;

/// <summary>
/// A run that writes a set of files into a folder, perhaps over an earlier run's files (<c>reproduce --out</c>,
/// <c>dataset --out</c>). An interrupted run (killed, failed) must never leave an index that vouches for files it did
/// not write, so: the folder is first marked in progress (<see cref="MarkerName"/>, saying which run) and the earlier
/// index is removed; files are written (each atomically); the index, listing only this run's files, is written last
/// and atomically, and only then is the mark removed. After a kill the folder holds no index and says why.
/// </summary>
public sealed class OutputFolderRun
{
    /// <summary>The mark of a run in progress (or interrupted): present exactly while no index may be trusted.</summary>
    public const string MarkerName = "IN-PROGRESS";

    public string Folder { get; }
    public string IndexPath { get; }
    string MarkerPath => Path.Combine(Folder, MarkerName);

    OutputFolderRun(string folder, string indexPath)
    {
        Folder = folder;
        IndexPath = indexPath;
    }

    /// <summary>Creates the folder if needed, marks it in progress and removes an earlier run's index.</summary>
    /// <param name="indexName">The index's file name in the folder.</param>
    /// <param name="description">What is running, for the mark (a command line, say).</param>
    public static OutputFolderRun Begin(string folder, string indexName, string description)
    {
        Directory.CreateDirectory(folder);
        var run = new OutputFolderRun(Path.GetFullPath(folder), Path.Combine(Path.GetFullPath(folder), indexName));
        AtomicFile.WriteAllText(run.MarkerPath,
            $"A workbook run ({description}) started writing into this folder at {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} UTC (process {Environment.ProcessId}).\n" +
            $"While this file exists the run has not finished: the folder may hold a mix of its files and an earlier run's, and there is no {indexName}.\n" +
            $"If no such process is running, the run was interrupted; run it again.\n");
        switch (FileSystemEntries.KindOf(run.IndexPath))
        {
            case EntryKind.Missing:
                break;
            case EntryKind.Directory:
                throw new IOException($"'{run.IndexPath}' is a folder; the run's index cannot be written there.");
            default:
                File.Delete(run.IndexPath); // the earlier run's index describes the earlier run's files
                break;
        }
        return run;
    }

    /// <summary>Writes the index (atomically) and removes the mark: from now on the index describes the folder.</summary>
    public void Complete(string indexContent)
    {
        AtomicFile.WriteAllText(IndexPath, indexContent);
        File.Delete(MarkerPath);
    }
}
