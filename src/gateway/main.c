/*
 * five-gateway: what `five gateway` runs (five-gateway(8)).
 */
#include "gateway/gateway.h"

int
main(int argc, char **argv)
{
	return gateway_main(argc, argv);
}
