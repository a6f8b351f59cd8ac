using Workbook.Cli;
using Workbook.Model;

// Process-wide, so here rather than in Run (which tests call in their own process): see NativeHeap for why.
try
{
    NativeHeap.KeepFreedBlocks();
}
catch (ArgumentException e)
{
    return CliErrors.Report(e, Console.Error);
}
return WorkbookCli.Run(args, Console.Out, Console.Error);
