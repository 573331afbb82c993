set terminal pngcairo size 1100,620 font 'sans,10'
set output 'memory.png'
set style data histogram
set style fill solid 0.85 border -1
set grid ytics
set key outside top center horizontal
set xtics rotate by -25 scale 0
set bmargin 10
set rmargin 8

set style histogram clustered gap 1.5
set key off
set ylabel "bytes of RSS per idle session"
set title "Memory per idle session (10,000 sessions)"
plot 'memory.dat' using 2:xtic(1)
